package storage

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

// Registry holds the backends an executor offers, by name. It is built once
// at start from the settings and is read-only afterwards.
type Registry struct {
	byName map[string]Backend
}

// NewRegistry builds every backend from the settings (log may be nil).
// This is the one place backends are registered.
func NewRegistry(s config.Settings, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{byName: map[string]Backend{}}
	r.add(Local{})
	r.add(NFS{})
	r.add(NewCloud(s.Cloud, log.With("storage", "cloud")), "s3")
	r.add(NewPLGData(s.PLGData, log.With("storage", "plgdata")))
	r.add(NewGridFTP(s.GridFTP, log.With("storage", "gridftp")))
	return r, nil
}

// Register adds a backend (and its aliases) or replaces one of the same
// name. Call it before the registry is shared.
func (r *Registry) Register(b Backend, aliases ...string) { r.add(b, aliases...) }

func (r *Registry) add(b Backend, aliases ...string) {
	r.byName[b.Name()] = b
	for _, a := range aliases {
		r.byName[a] = b
	}
}

// Get returns the backend called name (an alias such as "s3" included).
func (r *Registry) Get(name string) (Backend, error) {
	if b, ok := r.byName[name]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("unknown storage %q (available: %s)", name, strings.Join(r.Names(), ", "))
}

// Names lists the registered names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
