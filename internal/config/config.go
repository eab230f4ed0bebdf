package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
)

// Built-in defaults of the settings that have a fixed one. Default returns
// all of them, including those computed at run time (threads, tmp_dir).
const (
	DefaultAMQPURL           = "amqp://guest:guest@localhost:5672/"
	DefaultQueue             = "hyperflow.jobs"
	DefaultStorage           = "cloud"
	DefaultRegion            = "us-east-1"
	DefaultPLGDataEndpoint   = "https://data.plgrid.pl"
	DefaultShutdownGrace     = 10 * time.Minute
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultOutputTail        = 64 << 10
	DefaultLogLevel          = "info"
	DefaultLogFormat         = "text"
	DefaultEventsExchange    = "hyperflow.events"
	// DefaultEventsStreamMaxAge and DefaultEventsStreamMaxBytes bound the
	// events stream (events_stream) when it is on: 7 days, 1 GB.
	DefaultEventsStreamMaxAge   = 7 * 24 * time.Hour
	DefaultEventsStreamMaxBytes = 1_000_000_000
	DefaultMaxMessageSize       = 16 << 20
	DefaultStagingConcurrency   = 16

	// Worker-pool mode: the Node listener's defaults.
	DefaultRedisURL         = "redis://127.0.0.1:6379"
	DefaultFileWatchRetries = 10
	DefaultTaskAttempts     = 1
	DefaultBackoffSeed      = 10
)

// Values of the events setting: which job events are published.
const (
	EventsAll       = "all"       // every job event (the default)
	EventsLifecycle = "lifecycle" // job.started and job.finished only
	EventsOff       = "off"       // no job events (executor events stay)
)

// Cloud holds the S3 settings (YAML section cloud_storage). A job's
// options.cloud_storage override decodes into the same struct, from YAML
// or JSON with the same keys; see Override.
type Cloud struct {
	// Provider is accepted and ignored: only S3 is supported. Load warns
	// when it is set to anything but "AWS".
	Provider string `yaml:"provider" json:"provider,omitempty"`
	// AccessKeyID and SecretAccessKey are static credentials; when empty
	// the AWS SDK's usual credential chain applies.
	AccessKeyID     string `yaml:"aws_access_key_id" json:"aws_access_key_id,omitempty"`
	SecretAccessKey Secret `yaml:"aws_secret_access_key" json:"aws_secret_access_key,omitempty"`
	Region          string `yaml:"region" json:"region,omitempty"`
	// Endpoint is the base URL of an S3-compatible server (MinIO, Ceph,
	// versitygw); empty means AWS.
	Endpoint  string `yaml:"endpoint" json:"endpoint,omitempty"`
	PathStyle bool   `yaml:"path_style" json:"path_style,omitempty"`
}

// Override returns c with every non-empty field of o put in its place; a
// true o.PathStyle turns path-style addressing on. It merges a job's
// options.cloud_storage over the executor's settings.
func (c Cloud) Override(o Cloud) Cloud {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.Provider, o.Provider)
	set(&c.AccessKeyID, o.AccessKeyID)
	if o.SecretAccessKey != "" {
		c.SecretAccessKey = o.SecretAccessKey
	}
	set(&c.Region, o.Region)
	set(&c.Endpoint, o.Endpoint)
	c.PathStyle = c.PathStyle || o.PathStyle
	return c
}

// PLGData holds the settings of the plgdata storage (YAML section plgdata).
type PLGData struct {
	// Proxy is the path of the user's proxy certificate.
	Proxy    string `yaml:"proxy" json:"proxy,omitempty"`
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
}

// GridFTP holds the settings of the gridftp storage (YAML section gridftp).
type GridFTP struct {
	// Proxy is the path of the user's proxy certificate, passed to
	// globus-url-copy as X509_USER_PROXY.
	Proxy string `yaml:"proxy" json:"proxy,omitempty"`
}

// Settings is the executor's configuration. The yaml tags are the keys of
// the settings file; see the package documentation for the environment
// variables, flags and defaults.
type Settings struct {
	AMQPURL           Secret        `yaml:"amqp_url"`
	AMQPURLOrder      string        `yaml:"amqp_url_order"`       // shuffle or ordered: how several URLs are tried
	AMQPTLSCAFile     string        `yaml:"amqp_tls_ca_file"`     // CA of the broker's certificate ("" = URL's cacertfile, else system roots)
	AMQPTLSCertFile   string        `yaml:"amqp_tls_cert_file"`   // client certificate ("" = URL's certfile)
	AMQPTLSKeyFile    string        `yaml:"amqp_tls_key_file"`    // its key ("" = URL's keyfile)
	AMQPTLSServerName string        `yaml:"amqp_tls_server_name"` // name in the broker's certificate ("" = URL's, else its host)
	Queue             string        `yaml:"amqp_queue"`
	Storage           string        `yaml:"storage"`
	Threads           int           `yaml:"threads"`
	Cloud             Cloud         `yaml:"cloud_storage"`
	PLGData           PLGData       `yaml:"plgdata"`
	GridFTP           GridFTP       `yaml:"gridftp"`
	JobTimeout        time.Duration `yaml:"job_timeout"`        // 0 = no limit
	ShutdownGrace     time.Duration `yaml:"shutdown_grace"`     // running jobs' time to finish on shutdown
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"` // > 0
	OutputTail        int           `yaml:"output_tail"`        // bytes of stdout/stderr kept per job
	TmpDir            string        `yaml:"tmp_dir"`            // root of job work directories
	LogLevel          string        `yaml:"log_level"`          // debug, info, warn or error (lower case)
	LogFormat         string        `yaml:"log_format"`         // text or json (lower case)
	MetricsAddr       string        `yaml:"metrics_addr"`       // "" = no metrics endpoint
	EventsExchange    string        `yaml:"events_exchange"`
	// EventsStream, when set, is a stream queue the executor declares and
	// binds to the events exchange with "#", so that every event is kept
	// (for hyperflow-top --history) within EventsStreamMaxAge and
	// EventsStreamMaxBytes (x-max-age, x-max-length-bytes).
	EventsStream         string        `yaml:"events_stream"`
	EventsStreamMaxAge   time.Duration `yaml:"events_stream_max_age"`
	EventsStreamMaxBytes int           `yaml:"events_stream_max_bytes"`
	MaxMessageSize       int           `yaml:"max_message_size"` // bytes

	ProgressInterval   time.Duration `yaml:"progress_interval"`    // 0 = no progress events
	Events             string        `yaml:"events"`               // all, lifecycle or off (lower case)
	StagingConcurrency int           `yaml:"staging_concurrency"`  // files of a job staged at a time
	ConnectAttempts    int           `yaml:"connect_attempts"`     // 0 = forever
	ConsumerTimeout    time.Duration `yaml:"consumer_timeout"`     // 0 = the broker's
	MaxDeliveries      int           `yaml:"max_deliveries"`       // 0 = no limit
	QueueType          string        `yaml:"queue_type"`           // "" = no argument
	DeadLetterExchange string        `yaml:"dead_letter_exchange"` // "" = no argument

	// Worker-pool mode (executor/workerpool), a drop-in for HyperFlow's
	// Node job listener: the settings below are read only in that mode, and
	// their environment variables are the listener's, so that a worker image
	// swaps the command and keeps its environment.
	WorkerPool bool   `yaml:"worker_pool"`
	PoolQueue  string `yaml:"queue_name"` // the task type's queue (QUEUE_NAME)
	// RabbitHostname is user:password@host:port/vhost; the broker URL is
	// "amqp://" + it. Empty: amqp_url is used.
	RabbitHostname Secret `yaml:"rabbit_hostname"`
	RedisURL       Secret `yaml:"redis_url"`
	Prefetch       int    `yaml:"rabbit_prefetch_size"` // AMQP prefetch, 0 = threads
	// WorkDir is the shared working directory; "" = /work_dir if it
	// exists, else the current directory.
	WorkDir   string `yaml:"work_dir"`
	InputDir  string `yaml:"input_dir"`  // where workflow inputs are, "" = WorkDir
	OutputDir string `yaml:"output_dir"` // where workflow outputs go, "" = WorkDir
	// LogDir holds the tasks' stdout and stderr files; "" = WorkDir/logs-hf.
	LogDir            string `yaml:"log_dir"`
	WaitForInputFiles bool   `yaml:"wait_for_input_files"`
	FileWatchRetries  int    `yaml:"file_watch_num_retries"`
	// TaskAttempts is how many times a failing command is run in all
	// (HF_VAR_NUMBER_OF_RETRIES), with a random pause of up to
	// BackoffSeed * min(attempt, 5) seconds between two.
	TaskAttempts int    `yaml:"number_of_retries"`
	BackoffSeed  int    `yaml:"backoff_seed"`
	NodeName     string `yaml:"node_name"` // HF_LOG_NODE_NAME: shown as the hostname
	PodName      string `yaml:"pod_name"`  // HF_LOG_POD_NAME: logged
}

// PoolBrokerURL is the broker URL of the worker-pool mode: amqp:// followed by
// RabbitHostname when it is set (as the Node listener builds it), else
// the executor's amqp_url.
func (s Settings) PoolBrokerURL() Secret {
	if s.RabbitHostname != "" {
		return Secret("amqp://" + s.RabbitHostname.Reveal())
	}
	return s.AMQPURL
}

// QueueArgs returns the opt-in arguments of the job queue declaration (nil
// when none: the engine's own declaration).
func (s Settings) QueueArgs() map[string]any {
	args := map[string]any{}
	if s.QueueType != "" {
		args["x-queue-type"] = s.QueueType
	}
	if s.DeadLetterExchange != "" {
		args["x-dead-letter-exchange"] = s.DeadLetterExchange
	}
	if len(args) == 0 {
		return nil
	}
	return args
}

// Default returns the built-in defaults.
func Default() Settings {
	threads := runtime.NumCPU()
	if threads < 1 {
		threads = 1
	}
	return Settings{
		AMQPURL:              DefaultAMQPURL,
		AMQPURLOrder:         "shuffle",
		Queue:                DefaultQueue,
		Storage:              DefaultStorage,
		Threads:              threads,
		Cloud:                Cloud{Region: DefaultRegion},
		PLGData:              PLGData{Endpoint: DefaultPLGDataEndpoint},
		ShutdownGrace:        DefaultShutdownGrace,
		HeartbeatInterval:    DefaultHeartbeatInterval,
		OutputTail:           DefaultOutputTail,
		TmpDir:               os.TempDir(),
		LogLevel:             DefaultLogLevel,
		LogFormat:            DefaultLogFormat,
		EventsExchange:       DefaultEventsExchange,
		EventsStreamMaxAge:   DefaultEventsStreamMaxAge,
		EventsStreamMaxBytes: DefaultEventsStreamMaxBytes,
		MaxMessageSize:       DefaultMaxMessageSize,
		MaxDeliveries:        5,
		ProgressInterval:     5 * time.Second,
		Events:               EventsAll,
		StagingConcurrency:   DefaultStagingConcurrency,
		RedisURL:             DefaultRedisURL,
		FileWatchRetries:     DefaultFileWatchRetries,
		TaskAttempts:         DefaultTaskAttempts,
		BackoffSeed:          DefaultBackoffSeed,
	}
}

// StorageNames returns the accepted values of the storage setting.
func StorageNames() []string {
	return []string{"cloud", "s3", "nfs", "local", "plgdata", "gridftp"}
}

// Validate reports every invalid setting, each error naming its YAML key.
// It only inspects values: it neither touches the file system nor the
// network.
func (s Settings) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}

	if err := checkAMQPURL(s.AMQPURL.Reveal()); err != nil {
		add("amqp_url", "%v", err)
	}
	switch s.AMQPURLOrder {
	case "shuffle", "ordered":
	default:
		add("amqp_url_order", "must be shuffle or ordered, got %q", s.AMQPURLOrder)
	}
	if strings.TrimSpace(s.Queue) == "" {
		add("amqp_queue", "must not be empty")
	}
	if names := StorageNames(); !slices.Contains(names, s.Storage) {
		add("storage", "must be one of %s, got %q", strings.Join(names, ", "), s.Storage)
	}
	if s.Threads < 1 {
		add("threads", "must be at least 1, got %d", s.Threads)
	}
	if s.JobTimeout < 0 {
		add("job_timeout", "must not be negative, got %v", s.JobTimeout)
	}
	if s.ShutdownGrace < 0 {
		add("shutdown_grace", "must not be negative, got %v", s.ShutdownGrace)
	}
	if s.HeartbeatInterval <= 0 {
		add("heartbeat_interval", "must be positive, got %v", s.HeartbeatInterval)
	}
	if s.OutputTail <= 0 {
		add("output_tail", "must be a positive number of bytes, got %d", s.OutputTail)
	}
	if s.MaxMessageSize <= 0 {
		add("max_message_size", "must be a positive number of bytes, got %d", s.MaxMessageSize)
	}
	if s.ConnectAttempts < 0 {
		add("connect_attempts", "must be 0 (forever) or more, got %d", s.ConnectAttempts)
	}
	if s.ProgressInterval < 0 {
		add("progress_interval", "must not be negative")
	}
	switch s.Events {
	case EventsAll, EventsLifecycle, EventsOff:
	default:
		add("events", "must be all, lifecycle or off, got %q", s.Events)
	}
	if s.StagingConcurrency < 1 {
		add("staging_concurrency", "must be at least 1, got %d", s.StagingConcurrency)
	}
	if s.ConsumerTimeout < 0 {
		add("consumer_timeout", "must not be negative")
	}
	if s.MaxDeliveries < 0 {
		add("max_deliveries", "must be 0 (no limit) or more, got %d", s.MaxDeliveries)
	}
	switch s.QueueType {
	case "", "classic", "quorum":
	default:
		add("queue_type", "must be classic or quorum, got %q", s.QueueType)
	}
	if s.TmpDir == "" {
		add("tmp_dir", "must not be empty")
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		add("log_level", "%v", err)
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		add("log_format", "must be text or json, got %q", s.LogFormat)
	}
	if s.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(s.MetricsAddr); err != nil {
			add("metrics_addr", "must be host:port (e.g. 127.0.0.1:9100), got %q", s.MetricsAddr)
		}
	}
	if strings.TrimSpace(s.EventsExchange) == "" {
		add("events_exchange", "must not be empty")
	}
	if s.EventsStream != "" {
		if s.EventsStreamMaxAge < time.Second {
			add("events_stream_max_age", "must be at least 1s, got %s", s.EventsStreamMaxAge)
		}
		if s.EventsStreamMaxBytes < 1 {
			add("events_stream_max_bytes", "must be more than 0, got %d", s.EventsStreamMaxBytes)
		}
	}
	if s.Cloud.Endpoint != "" {
		if err := checkHTTPURL(s.Cloud.Endpoint); err != nil {
			add("cloud_storage.endpoint", "%v", err)
		}
	}
	if err := checkHTTPURL(s.PLGData.Endpoint); err != nil {
		add("plgdata.endpoint", "%v", err)
	}
	if s.WorkerPool {
		errs = append(errs, s.validatePool()...)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid settings: %w", errors.Join(errs...))
}

// SlogLevel returns the slog level of LogLevel, info when it is invalid
// (Validate reports that).
func (s Settings) SlogLevel() slog.Level {
	l, err := parseLevel(s.LogLevel)
	if err != nil {
		return slog.LevelInfo
	}
	return l
}

// LogValue implements slog.LogValuer: every setting under its YAML key,
// secrets redacted.
func (s Settings) LogValue() slog.Value {
	table := settingTable()
	attrs := make([]slog.Attr, 0, len(table))
	for i := range table {
		attrs = append(attrs, slog.String(table[i].key, table[i].display(&s)))
	}
	return slog.GroupValue(attrs...)
}

func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("must be debug, info, warn or error, got %q", s)
}

// checkAMQPURL checks the URL, or each URL of a comma-separated list,
// without ever quoting it: it may hold a password.
func checkAMQPURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("must not be empty")
	}
	if strings.Contains(raw, ",") {
		var errs []error
		n := 0
		for i, one := range strings.Split(raw, ",") {
			if one = strings.TrimSpace(one); one == "" {
				continue
			}
			n++
			if err := checkOneAMQPURL(one); err != nil {
				errs = append(errs, fmt.Errorf("URL %d of the list: %w", i+1, err))
			}
		}
		if n == 0 {
			return errors.New("must not be empty")
		}
		return errors.Join(errs...)
	}
	return checkOneAMQPURL(raw)
}

func checkOneAMQPURL(raw string) error {
	u, err := url.Parse(raw) // err quotes raw: never show it
	if err != nil {
		return fmt.Errorf("not a valid URL: %s", redact.URL(raw))
	}
	if u.Scheme != "amqp" && u.Scheme != "amqps" {
		return fmt.Errorf("scheme must be amqp or amqps: %s", redact.URL(raw))
	}
	return nil
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http:// or https:// URL, got %q", redact.URL(raw))
	}
	return nil
}

// validate checks the worker-pool settings (only in that mode).
func (s Settings) validatePool() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if strings.TrimSpace(s.PoolQueue) == "" {
		add("queue_name", "must be set in worker-pool mode (the Node listener's QUEUE_NAME)")
	}
	if s.RabbitHostname != "" {
		if err := checkAMQPURL(s.PoolBrokerURL().Reveal()); err != nil {
			add("rabbit_hostname", "must be user:password@host:port/vhost: %v", err)
		}
	}
	if err := checkRedisURL(s.RedisURL.Reveal()); err != nil {
		add("redis_url", "%v", err)
	}
	if s.Prefetch < 0 {
		add("rabbit_prefetch_size", "must be 0 (as threads) or more, got %d", s.Prefetch)
	}
	if s.FileWatchRetries < 0 {
		add("file_watch_num_retries", "must not be negative, got %d", s.FileWatchRetries)
	}
	if s.TaskAttempts < 1 {
		add("number_of_retries", "must be at least 1 (the number of attempts in all), got %d", s.TaskAttempts)
	}
	if s.BackoffSeed < 0 {
		add("backoff_seed", "must not be negative, got %d", s.BackoffSeed)
	}
	return errs
}

// checkRedisURL checks a redis:// or rediss:// URL without quoting it.
func checkRedisURL(raw string) error {
	if raw == "" {
		return errors.New("must not be empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a valid URL: %s", redact.URL(raw))
	}
	if (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return fmt.Errorf("must be redis://host:port or rediss://host:port, got %s", redact.URL(raw))
	}
	return nil
}
