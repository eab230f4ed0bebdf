package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSecretFormat(t *testing.T) {
	const raw = "s3cr3t-Value"
	s := Secret(raw)
	tests := []struct {
		format string
		want   string
	}{
		{"%v", "***"},
		{"%s", "***"},
		{"%+v", "***"},
		{"%#v", `"***"`},
		{"%q", `"***"`},
		{"%5s|", "  ***|"},
		{"%-5v|", "***  |"},
		{"%x", "2a2a2a"},
		{"%X", "2A2A2A"},
		{"%d", "%!d(string=***)"},
		{"%T", "config.Secret"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			got := fmt.Sprintf(tt.format, s)
			if got != tt.want {
				t.Errorf("Sprintf(%q) = %q, want %q", tt.format, got, tt.want)
			}
			if strings.Contains(got, raw) {
				t.Errorf("Sprintf(%q) leaks the secret: %q", tt.format, got)
			}
		})
	}
	if got := s.Reveal(); got != raw {
		t.Errorf("Reveal() = %q, want %q", got, raw)
	}
	if got := Secret("").String(); got != "" {
		t.Errorf("empty Secret prints %q, want empty", got)
	}
	if got := s.String(); got != "***" {
		t.Errorf("String() = %q, want ***", got)
	}
}

func TestSecretURL(t *testing.T) {
	s := Secret("amqp://guest:hunter2@rabbit:5672/vhost")
	want := "amqp://guest:***@rabbit:5672/vhost"
	for _, format := range []string{"%v", "%s", "%+v"} {
		if got := fmt.Sprintf(format, s); got != want {
			t.Errorf("Sprintf(%q) = %q, want %q", format, got, want)
		}
	}
	if got := s.LogValue().String(); got != want {
		t.Errorf("LogValue() = %q, want %q", got, want)
	}
}

// secretSettings returns settings holding recognisable secrets.
func secretSettings() (Settings, []string) {
	s := Default()
	s.AMQPURL = "amqp://user:amqp-pass-XYZ@rabbit:5672/"
	s.Cloud.AccessKeyID = "AKIAEXAMPLE"
	s.Cloud.SecretAccessKey = "aws-secret-XYZ"
	return s, []string{"amqp-pass-XYZ", "aws-secret-XYZ"}
}

func TestSecretsNeverPrinted(t *testing.T) {
	s, secrets := secretSettings()
	jsonOut := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		return string(b)
	}
	yamlOut := func(v any) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatalf("yaml.Marshal: %v", err)
		}
		return string(b)
	}
	slogOut := func(json bool, args ...any) string {
		var buf bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&buf, nil)
		if json {
			h = slog.NewJSONHandler(&buf, nil)
		}
		slog.New(h).Info("loaded", args...)
		return buf.String()
	}
	outputs := map[string]string{
		"%v":                fmt.Sprintf("%v", s),
		"%+v":               fmt.Sprintf("%+v", s),
		"%#v":               fmt.Sprintf("%#v", s),
		"%v pointer":        fmt.Sprintf("%+v", &s.Cloud),
		"json":              jsonOut(s),
		"yaml":              yamlOut(s),
		"slog text":         slogOut(false, "settings", s),
		"slog json":         slogOut(true, "settings", s),
		"slog json cloud":   slogOut(true, "cloud", s.Cloud),
		"slog text secret":  slogOut(false, "url", s.AMQPURL),
		"LogValue resolved": s.LogValue().String(),
		"usage":             usage(s),
	}
	for name, out := range outputs {
		for _, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s leaks %q: %s", name, secret, out)
			}
		}
	}
	if out := outputs["slog json"]; !strings.Contains(out, `"amqp_url":"amqp://user:***@rabbit:5672/"`) ||
		!strings.Contains(out, `"cloud_storage.aws_access_key_id":"AKIAEXAMPLE"`) {
		t.Errorf("slog json output lacks the redacted settings: %s", out)
	}
}

func TestSecretDecodes(t *testing.T) {
	var c Cloud
	if err := yaml.Unmarshal([]byte("aws_secret_access_key: plain-secret\nregion: eu-west-1\n"), &c); err != nil {
		t.Fatalf("yaml.Unmarshal: %v", err)
	}
	if c.SecretAccessKey.Reveal() != "plain-secret" || c.Region != "eu-west-1" {
		t.Errorf("yaml decoded %+v (secret %q)", c, c.SecretAccessKey.Reveal())
	}

	// A job's options.cloud_storage, as wire.md shows it.
	var job Cloud
	in := `{"region": "eu-central-1", "endpoint": "http://127.0.0.1:7070", "aws_access_key_id": "k", "aws_secret_access_key": "s", "path_style": true}`
	if err := json.Unmarshal([]byte(in), &job); err != nil {
		t.Fatalf("json.Unmarshal: %v", err)
	}
	want := Cloud{Region: "eu-central-1", Endpoint: "http://127.0.0.1:7070", AccessKeyID: "k", SecretAccessKey: "s", PathStyle: true}
	if job != want {
		t.Errorf("json decoded %#v, want %#v", job, want)
	}
}

func TestCloudOverride(t *testing.T) {
	base := Cloud{Provider: "AWS", AccessKeyID: "base-id", SecretAccessKey: "base-secret", Region: "us-east-1"}
	tests := []struct {
		name     string
		base     Cloud
		override Cloud
		want     Cloud
	}{
		{"empty override keeps all", base, Cloud{}, base},
		{
			"region and endpoint",
			base,
			Cloud{Region: "eu-central-1", Endpoint: "http://127.0.0.1:7070", PathStyle: true},
			Cloud{Provider: "AWS", AccessKeyID: "base-id", SecretAccessKey: "base-secret", Region: "eu-central-1", Endpoint: "http://127.0.0.1:7070", PathStyle: true},
		},
		{
			"credentials",
			base,
			Cloud{AccessKeyID: "job-id", SecretAccessKey: "job-secret"},
			Cloud{Provider: "AWS", AccessKeyID: "job-id", SecretAccessKey: "job-secret", Region: "us-east-1"},
		},
		{
			"path style stays on",
			Cloud{Endpoint: "http://minio:9000", PathStyle: true},
			Cloud{Region: "x"},
			Cloud{Endpoint: "http://minio:9000", PathStyle: true, Region: "x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.base.Override(tt.override); got != tt.want {
				t.Errorf("Override() = %#v, want %#v", got, tt.want)
			}
		})
	}
}
