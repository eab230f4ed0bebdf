package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage/storagetest"
)

// s3Env is the private S3 server started by scripts/s3.sh.
type s3Env struct {
	settings config.Cloud // the executor's settings pointing at the server
	sdk      *s3.Client   // for out-of-band Seed, Fetch and buckets
}

// setupS3 connects to the private server, or skips (plain go test) or
// fails (make test) without one. The SDK never leaves loopback: every
// client has the server as its endpoint and static keys, and IMDS is off.
func setupS3(t *testing.T) s3Env {
	t.Helper()
	endpoint := testenv.Require(t, "HYPERFLOW_TEST_S3_ENDPOINT")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	settings := config.Cloud{
		AccessKeyID:     os.Getenv("HYPERFLOW_TEST_S3_ACCESS_KEY"),
		SecretAccessKey: config.Secret(os.Getenv("HYPERFLOW_TEST_S3_SECRET_KEY")),
		Region:          os.Getenv("HYPERFLOW_TEST_S3_REGION"),
		Endpoint:        endpoint,
		PathStyle:       true,
	}
	if settings.AccessKeyID == "" || settings.SecretAccessKey == "" || settings.Region == "" {
		t.Fatal("HYPERFLOW_TEST_S3_ENDPOINT is set but HYPERFLOW_TEST_S3_ACCESS_KEY, _SECRET_KEY or _REGION is not")
	}
	sdk := s3.New(s3.Options{
		Region:                     settings.Region,
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(settings.AccessKeyID, settings.SecretAccessKey.Reveal(), ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return s3Env{settings: settings, sdk: sdk}
}

// newBucket creates an empty bucket, emptied and removed after the test.
func (e s3Env) newBucket(t *testing.T) string {
	t.Helper()
	suffix := make([]byte, 8)
	rand.Read(suffix)
	bucket := "hftest-" + hex.EncodeToString(suffix)
	ctx := context.Background()
	if _, err := e.sdk.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	t.Cleanup(func() {
		p := s3.NewListObjectsV2Paginator(e.sdk, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Logf("list %s: %v", bucket, err)
				return
			}
			for _, o := range page.Contents {
				e.sdk.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			}
		}
		if _, err := e.sdk.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Logf("delete bucket %s: %v", bucket, err)
		}
	})
	return bucket
}

func (e s3Env) put(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	if _, err := e.sdk.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data),
	}); err != nil {
		t.Fatalf("seed s3://%s/%s: %v", bucket, key, err)
	}
}

func (e s3Env) get(t *testing.T, bucket, key string) ([]byte, bool) {
	t.Helper()
	out, err := e.sdk.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	var nsk *s3types.NoSuchKey
	if errors.As(err, &nsk) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("fetch s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("fetch s3://%s/%s: %v", bucket, key, err)
	}
	return data, true
}

func optString(opts storage.Options, keys ...string) string {
	for _, k := range keys {
		if s, ok := opts[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

func cloudHarness(e s3Env, b storage.Backend) storagetest.Harness {
	loc := func(opts storage.Options, name string) (string, string) {
		return optString(opts, "bucket", "s3_bucket"), optString(opts, "prefix", "s3_prefix") + name
	}
	return storagetest.Harness{
		Backend: b,
		Options: func(t *testing.T) storage.Options {
			return storage.Options{"bucket": e.newBucket(t), "prefix": "runs/42/"}
		},
		Seed: func(t *testing.T, opts storage.Options, name string, data []byte) {
			bucket, key := loc(opts, name)
			e.put(t, bucket, key, data)
		},
		Fetch: func(t *testing.T, opts storage.Options, name string) ([]byte, bool) {
			bucket, key := loc(opts, name)
			return e.get(t, bucket, key)
		},
	}
}

func TestCloud(t *testing.T) {
	e := setupS3(t)
	storagetest.Run(t, cloudHarness(e, storage.NewCloud(e.settings, nil)))
}

// roundTrip stages name in from opts, then out again as name+".out", and
// returns the stage-in error.
func roundTrip(t *testing.T, b storage.Backend, opts storage.Options, name string) error {
	t.Helper()
	ctx := context.Background()
	s, err := b.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	dir := t.TempDir()
	if _, err := storage.StageIn(ctx, s, dir, []string{name}, nil); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, name+".out")); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.StageOut(ctx, s, dir, []string{name + ".out"}, nil); err != nil {
		t.Fatalf("stage out: %v", err)
	}
	return nil
}

func TestCloudAliases(t *testing.T) {
	e := setupS3(t)
	c := storage.NewCloud(e.settings, nil)
	bucket := e.newBucket(t)
	e.put(t, bucket, "old/style/in.dat", []byte("aliases"))
	opts := storage.Options{"s3_bucket": bucket, "s3_prefix": "old/style/"}
	s, err := c.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "s3://"+bucket+"/old/style/"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if err := roundTrip(t, c, opts, "in.dat"); err != nil {
		t.Fatalf("stage in: %v", err)
	}
	if got, ok := e.get(t, bucket, "old/style/in.dat.out"); !ok || string(got) != "aliases" {
		t.Errorf("output stored as %q (exists %v)", got, ok)
	}
	// Both spellings at once are fine when they agree, an error otherwise.
	if _, err := c.Open(context.Background(), storage.Options{"bucket": bucket, "s3_bucket": bucket}); err != nil {
		t.Errorf("bucket and s3_bucket agreeing: %v", err)
	}
	_, err = c.Open(context.Background(), storage.Options{"bucket": bucket, "s3_bucket": "other"})
	var oe *storage.OptionError
	if !errors.As(err, &oe) || oe.Option != "bucket" {
		t.Errorf("bucket and s3_bucket differing: %v, want an OptionError for bucket", err)
	}
}

func TestCloudBadOptions(t *testing.T) {
	// No server needed: Open sends no request.
	c := storage.NewCloud(config.Cloud{Region: "us-east-1", Endpoint: "http://127.0.0.1:1", AccessKeyID: "a", SecretAccessKey: "b"}, nil)
	for _, tc := range []struct {
		name   string
		opts   storage.Options
		option string // the OptionError's Option
	}{
		{"no bucket", storage.Options{"prefix": "p/"}, "bucket"},
		{"empty bucket", storage.Options{"bucket": ""}, "bucket"},
		{"bucket not a string", storage.Options{"bucket": 5.0}, "bucket"},
		{"s3_bucket not a string", storage.Options{"s3_bucket": true}, "s3_bucket"},
		{"bucket is a URL", storage.Options{"bucket": "s3://b/p"}, "bucket"},
		{"prefix not a string", storage.Options{"bucket": "b", "prefix": []any{}}, "prefix"},
		{"cloud_storage not an object", storage.Options{"bucket": "b", "cloud_storage": "x"}, "cloud_storage"},
		{"cloud_storage wrong type", storage.Options{"bucket": "b", "cloud_storage": map[string]any{"region": 5}}, "cloud_storage.region"},
		{"cloud_storage half keys", storage.Options{"bucket": "b", "cloud_storage": map[string]any{"aws_access_key_id": "k"}}, "cloud_storage"},
		{"cloud_storage bad endpoint", storage.Options{"bucket": "b", "cloud_storage": map[string]any{"endpoint": "ftp://x"}}, "cloud_storage.endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Open(context.Background(), tc.opts)
			var oe *storage.OptionError
			if !errors.As(err, &oe) || oe.Option != tc.option {
				t.Fatalf("Open(%v) = %v, want an OptionError for %s", tc.opts, err, tc.option)
			}
			if !strings.Contains(err.Error(), "options."+tc.option) {
				t.Errorf("error %q does not name options.%s", err, tc.option)
			}
		})
	}
}

func TestCloudOverride(t *testing.T) {
	e := setupS3(t)
	wrong := e.settings
	wrong.AccessKeyID = "hfwrongkey"
	wrong.SecretAccessKey = "wrong-secret"
	c := storage.NewCloud(wrong, nil)
	bucket := e.newBucket(t)
	e.put(t, bucket, "in.dat", []byte("override"))

	opts := storage.Options{"bucket": bucket}
	if err := roundTrip(t, c, opts, "in.dat"); err == nil {
		t.Fatal("the settings' wrong keys worked")
	}
	opts["cloud_storage"] = map[string]any{
		"aws_access_key_id":     e.settings.AccessKeyID,
		"aws_secret_access_key": e.settings.SecretAccessKey.Reveal(),
		"provider":              "AWS",
		"unknown_key":           "ignored",
	}
	if err := roundTrip(t, c, opts, "in.dat"); err != nil {
		t.Fatalf("with the right keys in options.cloud_storage: %v", err)
	}
	if got, ok := e.get(t, bucket, "in.dat.out"); !ok || string(got) != "override" {
		t.Errorf("output stored as %q (exists %v)", got, ok)
	}

	// A job's endpoint is used: a dead one fails, after the retries,
	// naming the object and the endpoint.
	good := storage.NewCloud(e.settings, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := good.Open(ctx, storage.Options{"bucket": bucket,
		"cloud_storage": map[string]any{"endpoint": "http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Get(ctx, "in.dat", filepath.Join(t.TempDir(), "x"))
	if err == nil || !strings.Contains(err.Error(), "s3://"+bucket+"/in.dat") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("get through a dead endpoint: %v, want an error naming the object and endpoint", err)
	}
	t.Logf("error after %v: %v", time.Since(start), err)
}

func TestCloudClientReuse(t *testing.T) {
	// No server needed: building a client sends no request.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	base := config.Cloud{Region: "us-east-1", Endpoint: "http://127.0.0.1:1", PathStyle: true, AccessKeyID: "a", SecretAccessKey: "b"}
	c := storage.NewCloud(base, nil)
	ctx := context.Background()
	client := func(cfg config.Cloud) *s3.Client {
		t.Helper()
		cl, err := c.Client(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	a := client(base)
	if b := client(base); a != b {
		t.Error("the same configuration gave two clients")
	}
	withProvider := base
	withProvider.Provider = "AWS"
	if b := client(withProvider); a != b {
		t.Error("the ignored provider split the cache")
	}
	for _, o := range []config.Cloud{
		{Region: "eu-central-1"},
		{Endpoint: "http://127.0.0.1:2"},
		{AccessKeyID: "other", SecretAccessKey: "other"},
	} {
		if b := client(base.Override(o)); a == b {
			t.Errorf("override %+v reused the base client", o)
		}
	}
	other := base.Override(config.Cloud{Region: "eu-central-1"})
	if client(other) != client(other) {
		t.Error("the same override gave two clients")
	}

	// Sessions opened concurrently share the cache without races.
	done := make(chan error)
	for range 8 {
		go func() {
			_, err := c.Open(ctx, storage.Options{"bucket": "b", "cloud_storage": map[string]any{"region": "ap-south-1"}})
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if client(base.Override(config.Cloud{Region: "ap-south-1"})) == a {
		t.Error("override client is the base client")
	}
}

func TestCloudMissingBucket(t *testing.T) {
	e := setupS3(t)
	c := storage.NewCloud(e.settings, nil)
	const bucket = "hftest-no-such-bucket"
	s, err := c.Open(context.Background(), storage.Options{"bucket": bucket, "prefix": "p/"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err = storage.StageIn(context.Background(), s, dir, []string{"in.dat"}, nil)
	assertCloudError(t, err, bucket, "p/in.dat", "NoSuchBucket")
	if errors.Is(err, storage.ErrNotExist) {
		t.Errorf("a missing bucket reads as a missing file: %v", err)
	}
	assertEmptyDir(t, dir)

	os.WriteFile(filepath.Join(dir, "out.dat"), []byte("x"), 0o644)
	_, err = storage.StageOut(context.Background(), s, dir, []string{"out.dat"}, nil)
	assertCloudError(t, err, bucket, "p/out.dat", "NoSuchBucket")
}

func TestCloudWrongCredentials(t *testing.T) {
	e := setupS3(t)
	bucket := e.newBucket(t)
	e.put(t, bucket, "p/in.dat", bytes.Repeat([]byte("x"), 3*storage.CloudPartSize))
	badSecret := e.settings
	badSecret.SecretAccessKey = "not-the-secret"
	badKey := e.settings
	badKey.AccessKeyID = "hfnosuchkey"
	for name, tc := range map[string]struct {
		settings config.Cloud
		codes    []string
	}{
		"secret": {badSecret, []string{"SignatureDoesNotMatch", "AccessDenied"}},
		"key":    {badKey, []string{"InvalidAccessKeyId", "AccessDenied", "XAdminUserNotFound"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := storage.NewCloud(tc.settings, nil)
			s, err := c.Open(context.Background(), storage.Options{"bucket": bucket, "prefix": "p/"})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			_, err = storage.StageIn(context.Background(), s, dir, []string{"in.dat"}, nil)
			assertCloudError(t, err, bucket, "p/in.dat", tc.codes...)
			assertEmptyDir(t, dir)

			os.WriteFile(filepath.Join(dir, "out.dat"), []byte("x"), 0o644)
			_, err = storage.StageOut(context.Background(), s, dir, []string{"out.dat"}, nil)
			assertCloudError(t, err, bucket, "p/out.dat", tc.codes...)
			if _, ok := e.get(t, bucket, "p/out.dat"); ok {
				t.Error("upload with wrong credentials stored the object")
			}
		})
	}
}

func TestCloudPrefixWithoutSlash(t *testing.T) {
	e := setupS3(t)
	c := storage.NewCloud(e.settings, nil)
	bucket := e.newBucket(t)
	for _, prefix := range []string{"runs/42-", ""} {
		e.put(t, bucket, prefix+"in.dat", []byte("prefix "+prefix))
		opts := storage.Options{"bucket": bucket, "prefix": prefix}
		if err := roundTrip(t, c, opts, "in.dat"); err != nil {
			t.Fatalf("prefix %q: stage in: %v", prefix, err)
		}
		if got, ok := e.get(t, bucket, prefix+"in.dat.out"); !ok || string(got) != "prefix "+prefix {
			t.Errorf("prefix %q: output at key %q is %q (exists %v)", prefix, prefix+"in.dat.out", got, ok)
		}
	}
	if _, ok := e.get(t, bucket, "runs/42-/in.dat.out"); ok {
		t.Error(`a "/" was added after the prefix`)
	}
}

func assertCloudError(t *testing.T, err error, bucket, key string, codes ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one for s3://%s/%s (%v)", bucket, key, codes)
	}
	t.Logf("error: %v", err)
	for _, want := range []string{bucket, key} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	var ce *storage.CloudError
	if !errors.As(err, &ce) {
		t.Fatalf("error %q is no *storage.CloudError", err)
	}
	for _, c := range codes {
		if ce.Code == c && strings.Contains(err.Error(), c) {
			return
		}
	}
	t.Errorf("error %q has S3 code %q, want one of %v in the message", err, ce.Code, codes)
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("failed download left %s behind", p)
		}
		return nil
	})
}

// TestCloudSizes: a stage-in of more files than the concurrency learns the
// objects' sizes from one listing of their common prefix (so small ones go
// SmallFileFactor times as many at a time, and the total is known for
// progress); names missing from the listing are left out, and objects of
// the same prefix that are not asked for do not count.
func TestCloudSizes(t *testing.T) {
	e := setupS3(t)
	c := storage.NewCloud(e.settings, nil)
	bucket := e.newBucket(t)
	ctx := context.Background()
	var names []string
	for i := range 30 {
		name := "d/f" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + "é" // a shared prefix, a multibyte character
		data := bytes.Repeat([]byte{'s'}, 100*i+1)
		if i < 20 {
			names = append(names, name)
		}
		e.put(t, bucket, "run/"+name, data)
	}
	names = uniqueStrings(names)
	s, err := c.Open(ctx, storage.Options{"bucket": bucket, "prefix": "run/"})
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := s.(storage.SmallFiles)
	if !ok {
		t.Fatal("the cloud session is not a storage.SmallFiles")
	}
	sizes := sf.Sizes(ctx, append(names, "d/missing"))
	if len(sizes) != len(names) {
		t.Errorf("Sizes gave %d sizes, want %d (the names asked for that exist): %v", len(sizes), len(names), sizes)
	}
	var sum int64
	for _, name := range names {
		got, err := e.sdk.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("run/" + name)})
		if err != nil {
			t.Fatal(err)
		}
		if sizes[name] != aws.ToInt64(got.ContentLength) {
			t.Errorf("size of %s: %d, want %d", name, sizes[name], aws.ToInt64(got.ContentLength))
		}
		sum += sizes[name]
	}

	tr := &storage.Transfer{}
	n, err := storage.Staging{Concurrency: 2, Transfer: tr}.In(ctx, s, t.TempDir(), names)
	if err != nil {
		t.Fatalf("stage in: %v", err)
	}
	if n != sum || tr.Total() != sum {
		t.Errorf("stage in: %d bytes, total %d; want %d both", n, tr.Total(), sum)
	}
}

func uniqueStrings(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
