// Command mkimage writes an OCI image archive of the project's commands
// without a container daemon and without a base image (FROM scratch).
//
//	CGO_ENABLED=0 go build -trimpath -o bin/static/ ./cmd/...
//	go run ./scripts/mkimage -bin bin/static -o bin/image.oci.tar
//
// `make image` does both. The archive is an OCI image layout (oci-layout,
// index.json, blobs/sha256/...) packed in a tar, as `podman load -i`,
// `skopeo copy oci-archive:...` and Docker 25 and later read it; it also
// holds the manifest.json of a docker-archive (docker save) pointing at the
// same blobs, for older Docker versions. The image holds:
//
//	/hyperflow-amqp-executor              the entrypoint
//	/hyperflow-top, /hyperflow-submit,
//	/hyperflow-amqp-metric-collector      the other commands
//	/etc/ssl/certs/ca-certificates.crt    the build machine's CA bundle
//	/etc/passwd, /etc/group               root and nonroot (65532)
//	/etc/nsswitch.conf                    hosts: files dns
//	/home/nonroot                         the user's home (0700)
//	/tmp                                  1777, where job work directories go
//
// and runs as 65532:65532. Two layers: the base files, then the binaries.
// Every binary must be statically linked (CGO_ENABLED=0): the image has no
// C library. The output is reproducible: every time stamp is the creation
// time, taken from -created, else $SOURCE_DATE_EPOCH, else the time of the
// commit, so the same commit and binaries give the same bytes.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's layout. The README ("Containers and Kubernetes") and
// examples/kubernetes rely on these.
const (
	// Entrypoint is the executor's path in the image, also the path that
	// application images COPY --from.
	Entrypoint = "/hyperflow-amqp-executor"
	// UID and GID of the nonroot user the image runs as.
	UID = 65532
	GID = 65532
	// User is the image config's User.
	User = "65532:65532"
	// CABundle is where Go's crypto/x509 looks first on Linux.
	CABundle = "/etc/ssl/certs/ca-certificates.crt"
	// Path is the PATH of the image: the commands are in /.
	Path = "/usr/local/bin:/usr/bin:/bin:/"
	// DefaultSource is the org.opencontainers.image.source label.
	DefaultSource = "https://github.com/hyperflow-wms/hyperflow-amqp-executor"
	// DefaultLicense is the org.opencontainers.image.licenses label: the
	// repository has no licence file yet, so nothing is asserted (SPDX
	// NOASSERTION) until -license says otherwise.
	DefaultLicense = "NOASSERTION"
	// ImageName is the name podman gives the loaded image (with the
	// version as tag), from the index's org.opencontainers.image.ref.name.
	ImageName = "localhost/hyperflow-amqp-executor"
)

// Commands are the binaries put in the image, the executor first.
var Commands = []string{
	"hyperflow-amqp-executor",
	"hyperflow-top",
	"hyperflow-submit",
	"hyperflow-amqp-metric-collector",
}

// Options say what to build.
type Options struct {
	BinDir   string    // directory holding the static Commands
	Out      string    // the archive to write
	CAFile   string    // CA bundle copied to CABundle
	Version  string    // org.opencontainers.image.version, and the tag
	Revision string    // org.opencontainers.image.revision
	Source   string    // org.opencontainers.image.source
	License  string    // org.opencontainers.image.licenses (SPDX expression)
	Created  time.Time // org.opencontainers.image.created and every time stamp
	Arch     string    // GOARCH of the binaries
}

func main() {
	var o Options
	var created string
	flag.StringVar(&o.BinDir, "bin", "bin/static", "directory with the statically linked commands")
	flag.StringVar(&o.Out, "o", "bin/image.oci.tar", "OCI image archive to write")
	flag.StringVar(&o.CAFile, "ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to copy into the image")
	flag.StringVar(&o.Version, "version", "", "image version (default: git describe --tags --always --dirty)")
	flag.StringVar(&o.Revision, "revision", "", "source revision (default: git rev-parse HEAD)")
	flag.StringVar(&o.Source, "source", DefaultSource, "source repository URL")
	flag.StringVar(&o.License, "license", DefaultLicense, "SPDX licence expression")
	flag.StringVar(&created, "created", "", "creation time, Unix seconds (default: $SOURCE_DATE_EPOCH, else the commit time)")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "GOARCH of the binaries")
	flag.Parse()
	if flag.NArg() != 0 {
		fail(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	if err := o.fillFromGit(created); err != nil {
		fail(err)
	}
	sum, err := Build(o)
	if err != nil {
		fail(err)
	}
	fmt.Printf("%s: %s, %s %s, %d bytes (layers %d bytes compressed, %d bytes unpacked)\n",
		o.Out, sum.Digest, sum.Name, sum.Created.Format(time.RFC3339), sum.ArchiveSize, sum.CompressedSize, sum.UncompressedSize)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}

// fillFromGit sets the version, revision and creation time not given.
func (o *Options) fillFromGit(created string) error {
	var err error
	if o.Version == "" {
		if o.Version, err = git("describe", "--tags", "--always", "--dirty"); err != nil {
			return err
		}
	}
	if o.Revision == "" {
		if o.Revision, err = git("rev-parse", "HEAD"); err != nil {
			return err
		}
	}
	if created == "" {
		created = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if created == "" {
		if created, err = git("log", "-1", "--format=%ct", "HEAD"); err != nil {
			return err
		}
	}
	sec, err := strconv.ParseInt(created, 10, 64)
	if err != nil || sec < 0 {
		return fmt.Errorf("creation time %q: want Unix seconds", created)
	}
	o.Created = time.Unix(sec, 0).UTC()
	return nil
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Summary describes the archive written.
type Summary struct {
	Name             string // ImageName:tag
	Digest           v1.Hash
	Created          time.Time
	ArchiveSize      int64 // bytes of the .tar
	CompressedSize   int64 // the layers as stored
	UncompressedSize int64 // the layers unpacked
}

// Labels returns the image's labels for o.
func Labels(o Options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "hyperflow-amqp-executor",
		"org.opencontainers.image.description": "HyperFlow AMQP job executor, hyperflow-top, hyperflow-submit and hyperflow-amqp-metric-collector",
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
		"org.opencontainers.image.licenses":    o.License,
	}
}

var tagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Tag turns a version into an image tag.
func Tag(version string) string {
	t := tagChars.ReplaceAllString(version, "-")
	if t == "" || t[0] == '.' || t[0] == '-' {
		t = "v" + t
	}
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

// Build writes the archive o.Out.
func Build(o Options) (Summary, error) {
	for name, v := range map[string]string{"version": o.Version, "revision": o.Revision, "source": o.Source, "license": o.License} {
		if v == "" {
			return Summary{}, fmt.Errorf("the %s is empty", name)
		}
	}
	if o.Created.IsZero() {
		return Summary{}, errors.New("the creation time is not set")
	}
	created := o.Created.UTC().Truncate(time.Second)
	o.Created = created

	base, baseSize, err := baseLayer(o)
	if err != nil {
		return Summary{}, err
	}
	bins, binsSize, err := binaryLayer(o)
	if err != nil {
		return Summary{}, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: v1.Time{Time: created}, CreatedBy: "mkimage: /etc (passwd, group, nsswitch.conf, CA bundle), /home/nonroot, /tmp",
			Comment: "base files"}},
		mutate.Addendum{Layer: bins, MediaType: types.OCILayer, History: v1.History{
			Created: v1.Time{Time: created}, CreatedBy: "mkimage: /" + strings.Join(Commands, " /"),
			Comment: "static binaries (CGO_ENABLED=0)"}},
	)
	if err != nil {
		return Summary{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return Summary{}, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = o.Arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: created}
	cf.Author = ""
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{Entrypoint},
		Env:        []string{"PATH=" + Path},
		WorkingDir: "/",
		Labels:     Labels(o),
		StopSignal: "SIGTERM",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return Summary{}, err
	}

	name := ImageName + ":" + Tag(o.Version)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{
		Add: img,
		Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "linux", Architecture: o.Arch},
			Annotations: map[string]string{"org.opencontainers.image.ref.name": name},
		},
	})

	dir, err := os.MkdirTemp(filepath.Dir(o.Out), ".mkimage-")
	if err != nil {
		return Summary{}, err
	}
	defer os.RemoveAll(dir)
	if _, err := layout.Write(filepath.Join(dir, "layout"), idx); err != nil {
		return Summary{}, fmt.Errorf("write the OCI layout: %w", err)
	}
	if err := writeDockerManifest(filepath.Join(dir, "layout"), img, name); err != nil {
		return Summary{}, err
	}
	tmp := filepath.Join(dir, "image.oci.tar")
	size, err := tarDir(filepath.Join(dir, "layout"), tmp, created)
	if err != nil {
		return Summary{}, err
	}
	if err := os.Rename(tmp, o.Out); err != nil {
		return Summary{}, err
	}

	sum := Summary{Name: name, Created: created, ArchiveSize: size, UncompressedSize: baseSize + binsSize}
	if sum.Digest, err = img.Digest(); err != nil {
		return Summary{}, err
	}
	for _, l := range []v1.Layer{base, bins} {
		n, err := l.Size()
		if err != nil {
			return Summary{}, err
		}
		sum.CompressedSize += n
	}
	return sum, nil
}

// DockerManifest is one entry of the manifest.json of a docker-archive
// (docker save): Docker before version 25 loads only that format. It points
// at the OCI layout's blobs, so one archive serves both.
type DockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func writeDockerManifest(dir string, img v1.Image, name string) error {
	cfg, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	m := DockerManifest{Config: "blobs/sha256/" + cfg.Hex, RepoTags: []string{name}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		m.Layers = append(m.Layers, "blobs/sha256/"+d.Hex)
	}
	b, err := json.Marshal([]DockerManifest{m})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)
}

// entry is one file or directory of a layer.
type entry struct {
	name     string // without a leading /; directories end in /
	mode     int64
	uid, gid int
	data     []byte
}

func baseLayer(o Options) (v1.Layer, int64, error) {
	ca, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, 0, fmt.Errorf("CA bundle: %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, 0, fmt.Errorf("CA bundle %s holds no PEM certificate", o.CAFile)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)
	return layer([]entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(CABundle, "/"), mode: 0o644, data: ca},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: UID, gid: GID},
		{name: "root/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
	}, o.Created)
}

func binaryLayer(o Options) (v1.Layer, int64, error) {
	var entries []entry
	for _, c := range Commands {
		p := filepath.Join(o.BinDir, c)
		if err := CheckStatic(p, o.Arch); err != nil {
			return nil, 0, err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, 0, err
		}
		entries = append(entries, entry{name: c, mode: 0o755, data: data})
	}
	return layer(entries, o.Created)
}

var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "arm": elf.EM_ARM,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// CheckStatic returns an error unless path is a statically linked Linux
// executable for arch: the image has no dynamic loader nor C library.
func CheckStatic(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w (build the commands with GOOS=linux)", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: not an executable (%v)", path, f.Type)
	}
	if m, ok := elfMachines[arch]; ok && f.Machine != m {
		return fmt.Errorf("%s: built for %v, not %s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked (has an ELF interpreter): build it with CGO_ENABLED=0", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("%s: needs shared libraries %v: build it with CGO_ENABLED=0", path, libs)
	}
	return nil
}

// layer packs entries (in that order, parents first) into a gzip-compressed
// OCI layer, every time stamp at mtime and owned by root unless said.
func layer(entries []entry, mtime time.Time) (v1.Layer, int64, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: mtime,
		}
		if e.uid == 0 {
			h.Uname, h.Gname = "root", "root"
		} else {
			h.Uname, h.Gname = "nonroot", "nonroot"
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, 0, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, 0, err
	}
	// Compressed once here (the library would compress at each read); the
	// gzip header has no name nor time, so the bytes are reproducible.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, 0, err
	}
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, 0, err
	}
	if err := zw.Close(); err != nil {
		return nil, 0, err
	}
	b := gz.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
	return l, int64(buf.Len()), err
}

// tarDir packs the OCI layout in dir into the tar out, in name order, with
// fixed owners, modes and times, and returns its size.
func tarDir(dir, out string, mtime time.Time) (int64, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel += "/"
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.Strings(names)
	f, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, n := range names {
		h := &tar.Header{Name: n, ModTime: mtime, Uname: "root", Gname: "root"}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(h); err != nil {
				return 0, err
			}
			continue
		}
		src, err := os.Open(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return 0, err
		}
		st, err := src.Stat()
		if err == nil {
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
			err = tw.WriteHeader(h)
		}
		if err == nil {
			_, err = io.Copy(tw, src)
		}
		src.Close()
		if err != nil {
			return 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), f.Close()
}
