package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *Settings)
		want   string // "" for valid; else a line of the error
	}{
		{"default", func(*Settings) {}, ""},
		{"every storage", func(s *Settings) { s.Storage = "plgdata" }, ""},
		{"s3 alias", func(s *Settings) { s.Storage = "s3" }, ""},
		{"amqps", func(s *Settings) { s.AMQPURL = "amqps://u:p@h:5671/" }, ""},
		{"zero timeouts", func(s *Settings) { s.JobTimeout, s.ShutdownGrace = 0, 0 }, ""},
		{"metrics on", func(s *Settings) { s.MetricsAddr = ":9100" }, ""},
		{"s3-compatible endpoint", func(s *Settings) { s.Cloud.Endpoint = "http://127.0.0.1:9000" }, ""},
		{"empty amqp url", func(s *Settings) { s.AMQPURL = "" }, "amqp_url: must not be empty"},
		{"only commas", func(s *Settings) { s.AMQPURL = " , ," }, "amqp_url: must not be empty"},
		{"second URL of a list bad", func(s *Settings) { s.AMQPURL = "amqp://u:pw1@a/,http://u:pw2@b/" },
			"amqp_url: URL 2 of the list: scheme must be amqp or amqps: http://u:***@b/"},
		{"bad order", func(s *Settings) { s.AMQPURLOrder = "random" }, `amqp_url_order: must be shuffle or ordered, got "random"`},
		{"http amqp url", func(s *Settings) { s.AMQPURL = "http://u:hunter2@h/" }, "amqp_url: scheme must be amqp or amqps: http://u:***@h/"},
		{"unparsable amqp url", func(s *Settings) { s.AMQPURL = "amqp://u:hunter2@h:x:y/" }, "amqp_url: not a valid URL: ***"},
		{"empty queue", func(s *Settings) { s.Queue = " " }, "amqp_queue: must not be empty"},
		{"unknown storage", func(s *Settings) { s.Storage = "ftp" }, `storage: must be one of cloud, s3, nfs, local, plgdata, gridftp, got "ftp"`},
		{"storage is case sensitive", func(s *Settings) { s.Storage = "Cloud" }, `storage: must be one of`},
		{"zero threads", func(s *Settings) { s.Threads = 0 }, "threads: must be at least 1, got 0"},
		{"negative job timeout", func(s *Settings) { s.JobTimeout = -time.Second }, "job_timeout: must not be negative, got -1s"},
		{"negative grace", func(s *Settings) { s.ShutdownGrace = -time.Second }, "shutdown_grace: must not be negative, got -1s"},
		{"zero heartbeat", func(s *Settings) { s.HeartbeatInterval = 0 }, "heartbeat_interval: must be positive, got 0s"},
		{"zero output tail", func(s *Settings) { s.OutputTail = 0 }, "output_tail: must be a positive number of bytes, got 0"},
		{"zero message size", func(s *Settings) { s.MaxMessageSize = 0 }, "max_message_size: must be a positive number of bytes, got 0"},
		{"empty tmp dir", func(s *Settings) { s.TmpDir = "" }, "tmp_dir: must not be empty"},
		{"log level", func(s *Settings) { s.LogLevel = "verbose" }, `log_level: must be debug, info, warn or error, got "verbose"`},
		{"log format", func(s *Settings) { s.LogFormat = "xml" }, `log_format: must be text or json, got "xml"`},
		{"metrics addr", func(s *Settings) { s.MetricsAddr = "9100" }, `metrics_addr: must be host:port (e.g. 127.0.0.1:9100), got "9100"`},
		{"events exchange", func(s *Settings) { s.EventsExchange = "" }, "events_exchange: must not be empty"},
		{"events lifecycle", func(s *Settings) { s.Events = EventsLifecycle }, ""},
		{"events off", func(s *Settings) { s.Events = EventsOff }, ""},
		{"events", func(s *Settings) { s.Events = "some" }, `events: must be all, lifecycle or off, got "some"`},
		{"staging concurrency", func(s *Settings) { s.StagingConcurrency = 0 }, "staging_concurrency: must be at least 1, got 0"},
		{"cloud endpoint", func(s *Settings) { s.Cloud.Endpoint = "minio:9000" }, `cloud_storage.endpoint: must be an http:// or https:// URL, got "***"`},
		{"plgdata endpoint", func(s *Settings) { s.PLGData.Endpoint = "" }, `plgdata.endpoint: must be an http:// or https:// URL, got ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Default()
			tt.change(&s)
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), "invalid settings: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to hold %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate() leaks the password: %q", err)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	s := Default()
	s.Threads, s.Storage, s.LogFormat = 0, "x", "y"
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, key := range []string{"threads:", "storage:", "log_format:"} {
		if !strings.Contains(err.Error(), "\n"+key) && !strings.Contains(err.Error(), ": "+key) {
			t.Errorf("Validate() = %q, lacks %s", err, key)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	tests := []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
		{"bogus", slog.LevelInfo},
	}
	for _, tt := range tests {
		s := Settings{LogLevel: tt.level}
		if got := s.SlogLevel(); got != tt.want {
			t.Errorf("SlogLevel(%q) = %v, want %v", tt.level, got, tt.want)
		}
	}
}
