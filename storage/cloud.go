package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

// Transfer tuning of the cloud storage. The transfer manager copies the
// parts it uploads into buffers of its own, (CloudUploadConcurrency+1) *
// CloudPartSize = 15 MiB per upload, plus about 3 * CloudPartSize read and
// grown for the first part; the part size grows beyond CloudPartSize only for
// files over 10000 parts (about 48 GiB), to fit S3's part limit. Measured on
// a 1 GiB upload to versitygw on loopback, the whole process peaks at 43-56
// MiB RSS (53-66 MiB with 3 parts at a time, 94-97 MiB with the transfer
// manager's defaults of 8 MiB and 5), with no measurable loss of speed. A
// download streams each ranged GET straight into the file and holds no part
// buffers (about 18 MiB RSS for the whole process), so it uses bigger ranges
// and more of them.
const (
	// CloudPartSize is the part size of multipart uploads: S3's minimum,
	// to keep the part buffers small. Files up to this size go in one PUT.
	CloudPartSize = 5 << 20
	// CloudUploadConcurrency is the number of parts one upload sends at a
	// time.
	CloudUploadConcurrency = 2
	// CloudRangeSize is the size of the byte ranges a download fetches
	// concurrently.
	CloudRangeSize = 16 << 20
	// CloudDownloadConcurrency is the number of ranges one download
	// fetches at a time.
	CloudDownloadConcurrency = 5
	// CloudMaxAttempts is how often the SDK's standard retryer tries one
	// request (connection errors, HTTP 5xx, throttling) before giving up.
	CloudMaxAttempts = 5
	// cloudBaseDelay and cloudMaxBackoff shape the retryer's exponential,
	// jittered backoff: up to 0.25, 0.5, 1 and 2 s before the retries
	// (throttling errors: the SDK's own 1 s base), so a server that
	// restarts within a few seconds does not fail the job.
	cloudBaseDelay  = 250 * time.Millisecond
	cloudMaxBackoff = 10 * time.Second
	// cloudAbortTimeout bounds the abort of a failed multipart upload, done
	// with a fresh context so it happens even after the job was cancelled.
	cloudAbortTimeout = 30 * time.Second
	// CloudMultipartUploads is how many multipart uploads (files over
	// CloudPartSize) the executor runs at a time, whatever the staging
	// concurrency: each holds about 4 * CloudPartSize of buffers. Smaller
	// files go in one PutObject streamed from the file, without a buffer.
	CloudMultipartUploads = 2
	// cloudIdleConnsPerHost keeps enough connections to the S3 server
	// open for staging_concurrency files at a time, each fetching up to
	// CloudDownloadConcurrency ranges (the SDK's default keeps 10).
	cloudIdleConnsPerHost = 128
)

// Cloud is the "cloud" storage (alias "s3"): it downloads a job's inputs
// from, and uploads its outputs to, an S3 bucket (AWS or an S3-compatible
// server such as MinIO, Ceph or versitygw), through the SDK's transfer
// manager (feature/s3/transfermanager): multipart, concurrent parts or
// ranges, streaming between the object and the file, so that memory is
// bounded by the tuning constants above and does not grow with file size.
//
// Job options: bucket (alias s3_bucket, required) and prefix (alias
// s3_prefix). A file name maps to the object key prefix + name, by plain
// concatenation: the prefix is used as given, because S3 prefixes need not
// end in "/" ("runs/42/" gives runs/42/in.dat, "runs/42-" gives
// runs/42-in.dat). The optional options.cloud_storage object has the keys of
// the settings' cloud_storage section and is merged over them
// (config.Cloud.Override), for a job that needs another account, region or
// server.
//
// Credentials: the static keys when aws_access_key_id/aws_secret_access_key
// are given, else the AWS SDK's default chain (environment, shared config and
// credentials files, SSO, web identity, ...). The EC2 instance metadata
// service (IMDS) is part of that chain only for AWS itself: when an endpoint
// is set the server is not AWS, instance-role credentials are of no use
// there, and probing IMDS off EC2 costs seconds of timeouts, so it is
// disabled. It is also disabled when static keys are given.
//
// Transient failures (connection errors, HTTP 5xx, throttling) are retried
// by the SDK's standard retryer, up to CloudMaxAttempts per request, with
// exponential jittered backoff. Request checksums are calculated and
// response checksums validated only when an operation requires them, since
// many S3-compatible servers reject the SDK's default CRC32 checksums.
//
// One S3 client is built per distinct effective configuration (settings
// merged with a job's override), on first use, and reused by every later job
// with the same configuration; Cloud is safe for concurrent use.
type Cloud struct {
	settings config.Cloud
	log      *slog.Logger

	// multipart bounds the multipart uploads in flight, over every job
	// and client (see CloudMultipartUploads).
	multipart chan struct{}

	mu      sync.Mutex
	clients map[config.Cloud]*cloudClient // by effective configuration, see clientKey
}

var _ Backend = (*Cloud)(nil)

// cloudClient is the S3 client of one configuration and its transfer
// manager.
type cloudClient struct {
	s3 *s3.Client
	tm *transfermanager.Client
}

// NewCloud returns the cloud storage with the executor's cloud_storage
// settings. It does no I/O: clients are built when a job first needs them.
func NewCloud(settings config.Cloud, log *slog.Logger) *Cloud {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cloud{
		settings:  settings,
		log:       log,
		multipart: make(chan struct{}, CloudMultipartUploads),
		clients:   map[config.Cloud]*cloudClient{},
	}
}

// Name implements Backend.
func (c *Cloud) Name() string { return "cloud" }

// Open implements Backend: it reads options.bucket (or s3_bucket),
// options.prefix (or s3_prefix) and the optional options.cloud_storage
// override, and gets the S3 client of the resulting configuration. It sends
// no request: a missing bucket or wrong credentials show in Get and Put.
func (c *Cloud) Open(ctx context.Context, opts Options) (Session, error) {
	bucket, err := aliasedOption(opts, "bucket", "s3_bucket")
	if err != nil {
		return nil, err
	}
	if bucket == "" {
		return nil, &OptionError{Option: "bucket", Msg: "missing: the S3 bucket of the job's files (alias s3_bucket)"}
	}
	if strings.Contains(bucket, "/") {
		return nil, &OptionError{Option: "bucket", Msg: fmt.Sprintf("%q is not a bucket name (put the key prefix in options.prefix)", bucket)}
	}
	prefix, err := aliasedOption(opts, "prefix", "s3_prefix")
	if err != nil {
		return nil, err
	}
	cfg := c.settings
	if raw, ok := opts["cloud_storage"]; ok && raw != nil {
		o, err := decodeCloudOverride(raw)
		if err != nil {
			return nil, err
		}
		cfg = cfg.Override(o)
	}
	cl, err := c.client(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &cloudSession{bucket: bucket, prefix: prefix, cl: cl, multipart: c.multipart, log: c.log}, nil
}

// Client returns the S3 client for the effective configuration cfg (the
// settings with a job's override merged in), building it on first use and
// returning the same client for an equal configuration afterwards.
func (c *Cloud) Client(ctx context.Context, cfg config.Cloud) (*s3.Client, error) {
	cl, err := c.client(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return cl.s3, nil
}

func (c *Cloud) client(ctx context.Context, cfg config.Cloud) (*cloudClient, error) {
	key := clientKey(cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[key]; ok {
		return cl, nil
	}
	// Built under the lock: building reads at most the shared AWS config
	// files (no network), and happens once per configuration.
	cl, err := newCloudClient(ctx, key)
	if err != nil {
		return nil, err
	}
	c.clients[key] = cl
	c.log.Debug("s3 client created", "endpoint", endpointOrAWS(key.Endpoint), "region", key.Region,
		"path_style", key.PathStyle, "static_keys", key.AccessKeyID != "")
	return cl, nil
}

// clientKey normalises cfg into the key of the client cache: the ignored
// provider is dropped, so that it does not split the cache.
func clientKey(cfg config.Cloud) config.Cloud {
	cfg.Provider = ""
	cfg.Endpoint = strings.TrimSpace(cfg.Endpoint)
	return cfg
}

func newCloudClient(ctx context.Context, cfg config.Cloud) (*cloudClient, error) {
	if cfg.Endpoint != "" {
		if err := checkEndpoint(cfg.Endpoint); err != nil {
			return nil, err
		}
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errors.New("cloud_storage: aws_access_key_id and aws_secret_access_key must be given together")
	}
	load := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = CloudMaxAttempts
				o.BaseDelay = cloudBaseDelay
				o.MaxBackoff = cloudMaxBackoff
			})
		}),
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		load = append(load, awsconfig.WithRegion(cfg.Region))
	}
	load = append(load, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = cloudIdleConnsPerHost
		t.MaxIdleConnsPerHost = cloudIdleConnsPerHost
	})))
	if cfg.AccessKeyID != "" {
		load = append(load, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(), "")))
	}
	if cfg.Endpoint != "" || cfg.AccessKeyID != "" {
		load = append(load, awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("cloud_storage: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = config.DefaultRegion
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = CloudPartSize
		o.MultipartUploadThreshold = CloudPartSize
		o.Concurrency = CloudUploadConcurrency
		// Ranges, not parts: every object is fetched concurrently, also
		// one uploaded in a single PUT by another tool.
		o.GetObjectType = tmtypes.GetObjectRanges
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		// A ranged GET carries no checksum of its own range; some
		// S3-compatible servers send the whole object's instead.
		o.DisableChecksumValidation = true
		o.FailTimeout = cloudAbortTimeout
	})
	return &cloudClient{s3: client, tm: tm}, nil
}

func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("cloud_storage.endpoint %q: want an http:// or https:// URL", endpoint)
	}
	return nil
}

func endpointOrAWS(endpoint string) string {
	if endpoint == "" {
		return "AWS"
	}
	return endpoint
}

// aliasedOption reads the string option name or its alias; both may be
// given only with the same value.
func aliasedOption(opts Options, name, alias string) (string, error) {
	v, err := StringOption(opts, name)
	if err != nil {
		return "", err
	}
	a, err := StringOption(opts, alias)
	if err != nil {
		return "", err
	}
	if v != "" && a != "" && v != a {
		return "", &OptionError{Option: name, Msg: fmt.Sprintf("%q conflicts with options.%s %q", v, alias, a)}
	}
	if v == "" {
		v = a
	}
	return v, nil
}

// decodeCloudOverride decodes options.cloud_storage (an object with the
// settings' cloud_storage keys; unknown keys are ignored).
func decodeCloudOverride(raw any) (config.Cloud, error) {
	var o config.Cloud
	if _, ok := raw.(map[string]any); !ok {
		return o, &OptionError{Option: "cloud_storage", Msg: fmt.Sprintf("must be an object, got %T", raw)}
	}
	b, err := json.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(b, &o)
	}
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return o, &OptionError{Option: "cloud_storage." + te.Field, Msg: fmt.Sprintf("must be a %s, got a JSON %s", te.Type, te.Value)}
		}
		return o, &OptionError{Option: "cloud_storage", Msg: err.Error()}
	}
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
		return o, &OptionError{Option: "cloud_storage", Msg: "aws_access_key_id and aws_secret_access_key must be given together"}
	}
	if o.Endpoint != "" {
		if err := checkEndpoint(o.Endpoint); err != nil {
			return o, &OptionError{Option: "cloud_storage.endpoint", Msg: strings.TrimPrefix(err.Error(), "cloud_storage.endpoint ")}
		}
	}
	return o, nil
}

// cloudSession is one job's bucket and prefix.
type cloudSession struct {
	bucket, prefix string
	cl             *cloudClient
	multipart      chan struct{} // the Cloud's
	log            *slog.Logger
}

func (s *cloudSession) SharedDir() string { return "" }
func (s *cloudSession) String() string    { return "s3://" + s.bucket + "/" + s.prefix }

func (s *cloudSession) key(name string) string { return s.prefix + filepath.ToSlash(name) }

// cloudSizesMaxPages bounds the LIST requests (1000 keys each) Sizes makes
// to learn the sizes of a stage-in's objects.
const cloudSizesMaxPages = 4

var _ SmallFiles = (*cloudSession)(nil)

// Sizes implements SmallFiles: the sizes of names from a listing of the
// longest prefix their keys share, at most cloudSizesMaxPages pages of it.
// A listing refused (no s3:ListBucket permission) or failing gives what
// was learned so far: staging then treats the rest as large.
func (s *cloudSession) Sizes(ctx context.Context, names []string) map[string]int64 {
	if len(names) == 0 {
		return nil
	}
	want := make(map[string]string, len(names)) // key -> name
	common := s.key(names[0])
	for _, name := range names {
		k := s.key(name)
		want[k] = name
		for !strings.HasPrefix(k, common) {
			common = common[:len(common)-1]
		}
	}
	for !utf8.ValidString(common) { // cut inside a character
		common = common[:len(common)-1]
	}
	sizes := make(map[string]int64, len(names))
	pages := s3.NewListObjectsV2Paginator(s.cl.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(common),
	})
	for range cloudSizesMaxPages {
		if !pages.HasMorePages() || len(sizes) == len(want) {
			break
		}
		page, err := pages.NextPage(ctx)
		if err != nil {
			s.log.Debug("s3 list for the sizes of the inputs", "bucket", s.bucket, "prefix", common, "err", err)
			break
		}
		for _, o := range page.Contents {
			if name, ok := want[aws.ToString(o.Key)]; ok && o.Size != nil {
				sizes[name] = *o.Size
			}
		}
	}
	return sizes
}

// Get downloads the object prefix+name into the new file dst, in ranges of
// CloudRangeSize fetched CloudDownloadConcurrency at a time and written in
// place (dst is the
// transfer manager's WriterAt). A missing object is a *CloudError wrapping
// ErrNotExist.
func (s *cloudSession) Get(ctx context.Context, name, dst string) (int64, error) {
	key := s.key(name)
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := s.cl.tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(key),
		WriterAt: f,
	}, func(o *transfermanager.Options) {
		o.PartSizeBytes = CloudRangeSize
		o.Concurrency = CloudDownloadConcurrency
	})
	if cerr := f.Close(); err == nil && cerr != nil {
		return 0, fmt.Errorf("download s3://%s/%s: close %s: %w", s.bucket, key, dst, cerr)
	}
	if err != nil {
		return 0, newCloudError("download", s.bucket, key, err)
	}
	n := aws.ToInt64(out.ContentLength)
	s.log.Debug("s3 download", "bucket", s.bucket, "key", key, "bytes", n, "duration", time.Since(start))
	return n, nil
}

// Put uploads the local file src to the object prefix+name: up to
// CloudPartSize in one PutObject streamed from the file (no buffer: many
// small files can go at once), else as a multipart upload of CloudPartSize
// parts sent CloudUploadConcurrency at a time, at most CloudMultipartUploads
// such uploads at once. A failed multipart upload is aborted.
func (s *cloudSession) Put(ctx context.Context, name, src string) (int64, error) {
	key := s.key(name)
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if fi.Size() <= CloudPartSize {
		_, err = s.cl.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(key),
			Body:          f,
			ContentLength: aws.Int64(fi.Size()),
		})
	} else {
		select {
		case s.multipart <- struct{}{}:
		case <-ctx.Done():
			return 0, newCloudError("upload", s.bucket, key, context.Cause(ctx))
		}
		_, err = s.cl.tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
			Bucket: aws.String(s.bucket),
			Key:    aws.String(key),
			Body:   f,
		})
		<-s.multipart
	}
	if err != nil {
		return 0, newCloudError("upload", s.bucket, key, err)
	}
	s.log.Debug("s3 upload", "bucket", s.bucket, "key", key, "bytes", fi.Size(), "duration", time.Since(start))
	return fi.Size(), nil
}

// CloudError is a failed transfer of one object. It wraps the SDK's error
// and, for an object that does not exist, ErrNotExist.
type CloudError struct {
	Op     string // "download" or "upload"
	Bucket string
	Key    string
	// Code is the S3 error code ("NoSuchKey", "NoSuchBucket",
	// "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", ...;
	// versitygw says "XAdminUserNotFound" for an unknown access key),
	// "" when the server sent none (connection errors).
	Code string
	// Status is the HTTP status of the failed response, 0 without one.
	Status int
	Err    error
}

func newCloudError(op, bucket, key string, err error) *CloudError {
	e := &CloudError{Op: op, Bucket: bucket, Key: key, Err: err}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code = api.ErrorCode()
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		e.Status = status.HTTPStatusCode()
	}
	return e
}

// NotExist reports whether the object does not exist (its bucket does).
func (e *CloudError) NotExist() bool {
	return e.Code == "NoSuchKey" || (e.Op == "download" && e.Code == "NotFound")
}

func (e *CloudError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s s3://%s/%s: ", e.Op, e.Bucket, e.Key)
	var api smithy.APIError
	if e.Code == "" || !errors.As(e.Err, &api) {
		b.WriteString(e.Err.Error())
		return b.String()
	}
	switch {
	case e.NotExist():
		b.WriteString("object does not exist")
	case e.Code == "NoSuchBucket":
		fmt.Fprintf(&b, "bucket %q does not exist", e.Bucket)
	case e.Code == "InvalidAccessKeyId", e.Code == "XAdminUserNotFound": // the latter from versitygw
		b.WriteString("access key not accepted by the server (check cloud_storage.aws_access_key_id)")
	case e.Code == "SignatureDoesNotMatch":
		b.WriteString("request signature rejected by the server (check cloud_storage.aws_secret_access_key)")
	case e.Code == "AccessDenied":
		fmt.Fprintf(&b, "access denied to bucket %q", e.Bucket)
	default:
		b.WriteString("S3 request failed")
	}
	fmt.Fprintf(&b, " (S3 error %s", e.Code)
	if e.Status != 0 {
		fmt.Fprintf(&b, ", HTTP %d", e.Status)
	}
	b.WriteString(")")
	if msg := api.ErrorMessage(); msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	return b.String()
}

// Unwrap gives the SDK's error and, for a missing object, ErrNotExist.
func (e *CloudError) Unwrap() []error {
	if e.NotExist() {
		return []error{ErrNotExist, e.Err}
	}
	return []error{e.Err}
}
