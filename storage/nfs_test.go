package storage_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage/storagetest"
)

// dirHarness runs the suite on a backend whose location is a directory.
func dirHarness(b storage.Backend) storagetest.Harness {
	return storagetest.Harness{
		Backend: b,
		Options: func(t *testing.T) storage.Options { return storage.Options{"workdir": t.TempDir()} },
		Seed: func(t *testing.T, opts storage.Options, name string, data []byte) {
			p := filepath.Join(opts["workdir"].(string), name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		Fetch: func(t *testing.T, opts storage.Options, name string) ([]byte, bool) {
			data, err := os.ReadFile(filepath.Join(opts["workdir"].(string), name))
			return data, err == nil
		},
	}
}

func TestNFS(t *testing.T)   { storagetest.Run(t, dirHarness(storage.NFS{})) }
func TestLocal(t *testing.T) { storagetest.Run(t, dirHarness(storage.Local{})) }
