package storage

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

// Registry holds the backends an executor offers, by name. It is built once
// at start from the settings and is read-only afterwards.
type Registry struct {
	byName map[string]Backend
}

// NewRegistry builds every backend from the settings. This is the one place
// backends are registered.
func NewRegistry(s config.Settings) (*Registry, error) {
	r := &Registry{byName: map[string]Backend{}}
	r.add(Local{})
	r.add(NFS{})
	r.add(NewPLGData(s.PLGData, nil))
	r.add(NewGridFTP(s.GridFTP, nil))
	r.add(NewCloud(s.Cloud, nil), "s3")
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
