package config

import (
	"strings"
	"testing"
)

// The worker-pool mode reads the Node listener's environment unchanged and
// resolves its concurrency as the listener does.
func TestLoadWorkerPool(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		env          map[string]string
		wantThreads  int
		wantPrefetch int
		wantWarning  string
	}{
		{name: "listener defaults: one task at a time", env: map[string]string{"WORKER_POOL": "1", "QUEUE_NAME": "q"},
			wantThreads: 1},
		{name: "prefetch gives threads", env: map[string]string{"WORKER_POOL": "1", "QUEUE_NAME": "q", "RABBIT_PREFETCH_SIZE": "3"},
			wantThreads: 3, wantPrefetch: 3},
		{name: "THREADS wins", env: map[string]string{"WORKER_POOL": "1", "QUEUE_NAME": "q", "THREADS": "4"},
			wantThreads: 4},
		{name: "flag", args: []string{"--worker-pool", "--queue-name", "q", "--threads", "2"},
			wantThreads: 2},
		{name: "prefetch below threads", env: map[string]string{"WORKER_POOL": "true", "QUEUE_NAME": "q", "THREADS": "4", "RABBIT_PREFETCH_SIZE": "2"},
			wantThreads: 4, wantPrefetch: 2, wantWarning: "rabbit_prefetch_size 2 is below threads 4: at most 2 tasks run at once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, fl, err := Load(tt.args, envMap(tt.env), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !s.WorkerPool || s.PoolQueue != "q" || s.Threads != tt.wantThreads || s.Prefetch != tt.wantPrefetch {
				t.Errorf("worker_pool %v queue %q threads %d prefetch %d, want true q %d %d",
					s.WorkerPool, s.PoolQueue, s.Threads, s.Prefetch, tt.wantThreads, tt.wantPrefetch)
			}
			got := strings.Join(fl.Warnings, "\n")
			if got != tt.wantWarning {
				t.Errorf("warnings %q, want %q", got, tt.wantWarning)
			}
		})
	}
}

func TestWorkerPoolValidation(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // each must appear in the error
	}{
		{name: "no queue", env: map[string]string{"WORKER_POOL": "1"},
			want: []string{"queue_name: must be set in worker-pool mode (the Node listener's QUEUE_NAME)"}},
		{name: "bad numbers", env: map[string]string{"WORKER_POOL": "1", "QUEUE_NAME": "q", "HF_VAR_NUMBER_OF_RETRIES": "0",
			"HF_VAR_BACKOFF_SEED": "-1", "HF_VAR_FILE_WATCH_NUM_RETRIES": "-2", "RABBIT_PREFETCH_SIZE": "-1"},
			want: []string{"number_of_retries: must be at least 1", "backoff_seed: must not be negative",
				"file_watch_num_retries: must not be negative", "rabbit_prefetch_size: must be 0"}},
		{name: "bad redis url, password not shown", env: map[string]string{"WORKER_POOL": "1", "QUEUE_NAME": "q", "REDIS_URL": "http://:sekrit@h:1"},
			want: []string{"redis_url: must be redis://host:port or rediss://host:port, got http://:***@h:1"}},
		{name: "bad rabbit hostname", env: map[string]string{"WORKER_POOL": "1", "QUEUE_NAME": "q", "RABBIT_HOSTNAME": "u:p@h:bad port"},
			want: []string{"rabbit_hostname: must be user:password@host:port/vhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(nil, envMap(tt.env), nil)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "sekrit") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	// Outside the mode its settings are not checked.
	if _, _, err := Load(nil, envMap(map[string]string{"HF_VAR_NUMBER_OF_RETRIES": "0"}), nil); err != nil {
		t.Errorf("executor mode refused a worker-pool setting: %v", err)
	}
}

func TestPoolBrokerURL(t *testing.T) {
	s := Default()
	if got := s.PoolBrokerURL().Reveal(); got != DefaultAMQPURL {
		t.Errorf("without RABBIT_HOSTNAME: %q, want amqp_url", got)
	}
	s.RabbitHostname = "u:p@rabbit:5672/vh"
	if got := s.PoolBrokerURL().Reveal(); got != "amqp://u:p@rabbit:5672/vh" {
		t.Errorf("PoolBrokerURL = %q", got)
	}
	if got := s.PoolBrokerURL().String(); strings.Contains(got, ":p@") {
		t.Errorf("PoolBrokerURL prints its password: %q", got)
	}
}
