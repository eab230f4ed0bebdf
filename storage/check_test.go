package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/plgdatatest"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

func TestCheckCloud(t *testing.T) {
	e := setupS3(t)
	if err := storage.NewCloud(e.settings, nil).Check(context.Background()); err != nil {
		t.Errorf("check with the right keys: %v", err)
	}
	bad := e.settings
	bad.SecretAccessKey = "wrong-secret"
	err := storage.NewCloud(bad, nil).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("check with a wrong secret: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("the secret leaked into the error: %v", err)
	}
}

func TestCheckPLGData(t *testing.T) {
	srv := plgdatatest.New(t, "CERT")
	proxy := plgdatatest.WriteProxy(t, "CERT")
	if err := storage.NewPLGData(config.PLGData{Proxy: proxy, Endpoint: srv.URL}, nil).Check(context.Background()); err != nil {
		t.Errorf("check: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "no-proxy")
	err := storage.NewPLGData(config.PLGData{Proxy: missing, Endpoint: srv.URL}, nil).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("check without the proxy file: %v", err)
	}
	err = storage.NewPLGData(config.PLGData{Proxy: proxy, Endpoint: "http://127.0.0.1:1"}, nil).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("check with a closed port: %v", err)
	}
}

func TestCheckGridFTP(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := storage.NewGridFTP(config.GridFTP{}, nil).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "globus-gass-copy-progs") {
		t.Errorf("check without globus-url-copy: %v", err)
	}
	tool := filepath.Join(os.Getenv("PATH"), "globus-url-copy")
	os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755)
	if err := storage.NewGridFTP(config.GridFTP{}, nil).Check(context.Background()); err != nil {
		t.Errorf("check with the tool on PATH: %v", err)
	}
	err = storage.NewGridFTP(config.GridFTP{Proxy: "/nonexistent/x509up"}, nil).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/x509up") {
		t.Errorf("check with a missing proxy: %v", err)
	}
}
