package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// testVersion is given to the binaries (-X main.version) and to the image.
const testVersion = "v0.0.0-mkimage-test"

// maxArchiveSize guards "keep the image small": the four stripped static
// binaries compress to about 14 MiB today.
const maxArchiveSize = 32 << 20

// shared is built once per test binary: the static commands and an archive.
var shared struct {
	once    sync.Once
	dir     string // removed by TestMain
	bin     string // the static commands
	archive string
	opts    Options
	sum     Summary
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// moduleRoot is the repository root, two levels above this package.
func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	return root
}

// goTool is the go command: on PATH, else the one of the toolchain that
// built this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// image builds the commands (CGO_ENABLED=0, as make image does) and the
// archive once, and returns them.
func image(t *testing.T) (bin, archive string, o Options, sum Summary) {
	t.Helper()
	shared.once.Do(func() {
		shared.err = func() error {
			dir, err := os.MkdirTemp("", "mkimage-test-")
			if err != nil {
				return err
			}
			shared.dir = dir
			shared.bin = filepath.Join(dir, "bin")
			if err := os.Mkdir(shared.bin, 0o755); err != nil {
				return err
			}
			cmd := exec.Command(goTool(), "build", "-trimpath",
				"-ldflags", "-s -w -X main.version="+testVersion, "-o", shared.bin+"/", "./cmd/...")
			cmd.Dir = moduleRoot(t)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
			}
			shared.opts = Options{
				BinDir: shared.bin, Out: filepath.Join(dir, "image.oci.tar"),
				CAFile: "/etc/ssl/certs/ca-certificates.crt", Version: testVersion,
				Source: DefaultSource, License: DefaultLicense, Arch: runtime.GOARCH,
			}
			if err := shared.opts.fillFromGit(""); err != nil {
				return err
			}
			shared.archive = shared.opts.Out
			shared.sum, err = Build(shared.opts)
			return err
		}()
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.bin, shared.archive, shared.opts, shared.sum
}

// readArchive unpacks an OCI archive and returns its only image, checking
// the layout's files and the index on the way.
func readArchive(t *testing.T, archive string) (v1.Image, v1.Descriptor) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if strings.Contains(h.Name, "..") || filepath.IsAbs(h.Name) {
			t.Fatalf("archive entry %q escapes", h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var out *os.File
			if out, err = os.Create(p); err == nil {
				_, err = io.Copy(out, tr)
				out.Close()
			}
		default:
			t.Fatalf("archive entry %q has type %q", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"oci-layout", "index.json", "manifest.json", "blobs/", "blobs/sha256/"} {
		if !slices.Contains(names, want) {
			t.Errorf("archive lacks %s (has %v)", want, names)
		}
	}
	var dm []DockerManifest
	if b, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err != nil || json.Unmarshal(b, &dm) != nil || len(dm) != 1 {
		t.Fatalf("manifest.json (docker-archive): %d entries, %v", len(dm), err)
	}
	for _, p := range append([]string{dm[0].Config}, dm[0].Layers...) {
		if !fileExists(filepath.Join(dir, p)) {
			t.Errorf("manifest.json names %s, not in the archive", p)
		}
	}
	var ociLayout struct {
		Version string `json:"imageLayoutVersion"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "oci-layout")); err != nil || json.Unmarshal(b, &ociLayout) != nil || ociLayout.Version != "1.0.0" {
		t.Fatalf("oci-layout: %q, %v", ociLayout.Version, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the index does not validate: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 1 {
		t.Fatalf("index: media type %s, %d manifests; want one image in an OCI index", im.MediaType, len(im.Manifests))
	}
	desc := im.Manifests[0]
	if desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want %s", desc.MediaType, types.OCIManifestSchema1)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	// The docker-archive view is the same image.
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	want := DockerManifest{Config: "blobs/sha256/" + cfgName.Hex, RepoTags: []string{desc.Annotations["org.opencontainers.image.ref.name"]}}
	for _, l := range layers {
		d, _ := l.Digest()
		want.Layers = append(want.Layers, "blobs/sha256/"+d.Hex)
	}
	if !reflect.DeepEqual(dm[0], want) {
		t.Errorf("manifest.json %+v, want %+v", dm[0], want)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("the image does not validate (digests, sizes, diff ids): %v", err)
	}
	return img, desc
}

// file is one entry of the image's file system.
type file struct {
	hdr  *tar.Header
	data []byte
}

// files flattens the image's layers.
func files(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	fs := map[string]file{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fs["/"+strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = file{h, data}
	}
	return fs
}

func TestImage(t *testing.T) {
	_, archive, o, sum := image(t)
	st, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s %s: archive %d bytes (%.1f MiB), layers %d bytes compressed, %d bytes unpacked (%.1f MiB)",
		sum.Name, sum.Digest, st.Size(), float64(st.Size())/(1<<20), sum.CompressedSize, sum.UncompressedSize,
		float64(sum.UncompressedSize)/(1<<20))
	if st.Size() > maxArchiveSize {
		t.Errorf("the archive is %d bytes, more than %d: what grew?", st.Size(), maxArchiveSize)
	}

	img, desc := readArchive(t, archive)
	if got, want := desc.Annotations["org.opencontainers.image.ref.name"], ImageName+":"+Tag(testVersion); got != want {
		t.Errorf("ref.name %q, want %q", got, want)
	}
	if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != runtime.GOARCH {
		t.Errorf("platform %+v, want linux/%s", desc.Platform, runtime.GOARCH)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(cf.Config, "", "  ")
	t.Logf("image config:\n%s", b)
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s", cf.OS, cf.Architecture)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("User %q, want 65532:65532", cf.Config.User)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/hyperflow-amqp-executor"}) {
		t.Errorf("Entrypoint %q, want [/hyperflow-amqp-executor]", cf.Config.Entrypoint)
	}
	if len(cf.Config.Cmd) != 0 {
		t.Errorf("Cmd %q, want none", cf.Config.Cmd)
	}
	if !slices.Contains(cf.Config.Env, "PATH="+Path) {
		t.Errorf("Env %q lacks PATH=%s", cf.Config.Env, Path)
	}
	for _, e := range cf.Config.Env {
		if strings.HasPrefix(e, "AMQP_URL=") || strings.HasPrefix(e, "AWS_") {
			t.Errorf("Env holds a secret setting: %s", e)
		}
	}

	labels := cf.Config.Labels
	created := o.Created.UTC().Format(time.RFC3339)
	for key, want := range map[string]string{
		"org.opencontainers.image.source":   DefaultSource,
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.created":  created,
		"org.opencontainers.image.licenses": DefaultLicense,
	} {
		if got := labels[key]; got == "" || got != want {
			t.Errorf("label %s = %q, want %q", key, got, want)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(labels["org.opencontainers.image.revision"]) {
		t.Errorf("revision label %q is not a commit id", labels["org.opencontainers.image.revision"])
	}
	if !cf.Created.Time.Equal(o.Created) {
		t.Errorf("config created %v, want %v (the commit time)", cf.Created.Time, o.Created)
	}
	commitTime, err := git("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(o.Created.Unix()); os.Getenv("SOURCE_DATE_EPOCH") == "" && commitTime != want {
		t.Errorf("created %s, want the commit time %s", want, commitTime)
	}

	fs := files(t, img)
	tmp, ok := fs["/tmp"]
	if !ok || tmp.hdr.Typeflag != tar.TypeDir || tmp.hdr.Mode&0o7777 != 0o1777 {
		t.Errorf("/tmp: %+v, want a directory with mode 1777", tmp.hdr)
	}
	ca, ok := fs[CABundle]
	if !ok {
		t.Fatalf("%s missing", CABundle)
	}
	if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(ca.data) {
		t.Errorf("%s holds no certificate", CABundle)
	}
	if host, err := os.ReadFile(o.CAFile); err != nil || !bytes.Equal(host, ca.data) {
		t.Errorf("%s differs from the build machine's %s (%v)", CABundle, o.CAFile, err)
	}
	if p := string(fs["/etc/passwd"].data); !strings.Contains(p, "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd lacks nonroot 65532:\n%s", p)
	}
	if g := string(fs["/etc/group"].data); !strings.Contains(g, "\nnonroot:x:65532:") {
		t.Errorf("/etc/group lacks nonroot 65532:\n%s", g)
	}
	if h := fs["/home/nonroot"].hdr; h == nil || h.Uid != UID || h.Gid != GID {
		t.Errorf("/home/nonroot: %+v, want owned by 65532:65532", h)
	}
	for p, f := range fs {
		if !f.hdr.ModTime.Equal(o.Created) {
			t.Errorf("%s: mtime %v, want the creation time %v", p, f.hdr.ModTime, o.Created)
		}
	}

	dir := t.TempDir()
	for _, c := range Commands {
		f, ok := fs["/"+c]
		if !ok {
			t.Errorf("/%s missing", c)
			continue
		}
		if f.hdr.Typeflag != tar.TypeReg || f.hdr.Mode&0o7777 != 0o755 || f.hdr.Uid != 0 {
			t.Errorf("/%s: type %q mode %o uid %d, want a root-owned 0755 file", c, f.hdr.Typeflag, f.hdr.Mode, f.hdr.Uid)
		}
		p := filepath.Join(dir, c)
		if err := os.WriteFile(p, f.data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := CheckStatic(p, runtime.GOARCH); err != nil {
			t.Errorf("/%s in the image: %v", c, err)
		}
	}
	// The binaries taken out of the image run, without the build tree.
	for _, c := range []string{"hyperflow-amqp-executor", "hyperflow-top"} {
		out, err := exec.Command(filepath.Join(dir, c), "--version").CombinedOutput()
		if want := c + " " + testVersion + "\n"; err != nil || string(out) != want {
			t.Errorf("/%s --version: %q, %v; want %q", c, out, err, want)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "hyperflow-amqp-executor"), "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "HYPERFLOW_TMPDIR") {
		t.Errorf("/hyperflow-amqp-executor --help: %v\n%s", err, out)
	}
}

// The same inputs give the same bytes: nothing depends on the clock or the
// order of a map.
func TestImageReproducible(t *testing.T) {
	_, archive, o, sum := image(t)
	o.Out = filepath.Join(t.TempDir(), "again.oci.tar")
	sum2, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Digest != sum2.Digest || !bytes.Equal(a, b) {
		t.Errorf("two builds differ: %s (%d bytes) and %s (%d bytes)", sum.Digest, len(a), sum2.Digest, len(b))
	}
}

func TestCreatedFromSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	o := Options{Version: "x", Revision: "y"}
	if err := o.fillFromGit(""); err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1700000000, 0).UTC(); !o.Created.Equal(want) {
		t.Errorf("created %v, want %v", o.Created, want)
	}
	if err := o.fillFromGit("-5"); err == nil {
		t.Error("a negative -created was accepted")
	}
}

func TestRefusesDynamicBinaries(t *testing.T) {
	bin, _, o, _ := image(t)
	var dynamic string
	for _, p := range []string{"/bin/true", "/usr/bin/true", "/bin/sh"} {
		if err := CheckStatic(p, runtime.GOARCH); err != nil && strings.Contains(err.Error(), "dynamically linked") {
			dynamic = p
			break
		}
	}
	if dynamic == "" {
		t.Skip("no dynamically linked program found on this machine")
	}
	dir := t.TempDir()
	for _, c := range Commands {
		src := filepath.Join(bin, c)
		if c == "hyperflow-top" {
			src = dynamic
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o.BinDir, o.Out = dir, filepath.Join(dir, "out.tar")
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("Build with a dynamically linked hyperflow-top: %v, want a CGO_ENABLED=0 error", err)
	}
	if fileExists(o.Out) {
		t.Error("an archive was written anyway")
	}

	data, err := os.ReadFile(filepath.Join(bin, "hyperflow-top"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hyperflow-top"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "hyperflow-submit"))
	if _, err := Build(o); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Build without hyperflow-submit: %v, want a missing file error", err)
	}
}

func TestTag(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                 "v1.2.3",
		"39ead6d-dirty":          "39ead6d-dirty",
		"v1.0+build/x":           "v1.0-build-x",
		"-x":                     "v-x",
		"":                       "v",
		strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		if got := Tag(in); got != want {
			t.Errorf("Tag(%q) = %q, want %q", in, got, want)
		}
	}
}
