package config

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlLineError matches the syntax errors of gopkg.in/yaml.v3.
var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// applyFile reads the settings file at path over s.
// Every key it sets is marked in given (nil: not recorded).
func applyFile(s *Settings, path string, getenv func(string) string, warn func(string), given map[string]bool) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read settings file: %w", err)
	}
	return applyYAML(s, path, src, getenv, warn, given)
}

// applyYAML renders the templates of src, parses it and stores every
// setting it sets in s. name is the file name used in errors and warnings.
func applyYAML(s *Settings, name string, src []byte, getenv func(string) string, warn func(string), given map[string]bool) error {
	rendered, err := renderTemplates(name, src, getenv)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(rendered, &doc); err != nil {
		msg := err.Error()
		if m := yamlLineError.FindStringSubmatch(msg); m != nil {
			hint := ""
			lines := strings.Split(string(rendered), "\n")
			if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(lines) && strings.HasPrefix(strings.TrimLeft(lines[n-1], " "), "\t") {
				hint = " (indent YAML with spaces, not tabs)"
			}
			return fmt.Errorf("%s:%s: %s%s", name, m[1], m[2], hint)
		}
		return fmt.Errorf("%s: %s", name, strings.TrimPrefix(msg, "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil // empty file, or only comments
	}
	root := resolveAlias(doc.Content[0])
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: expected a mapping of settings (key: value), got %s", name, root.Line, kindName(root))
	}
	if given == nil {
		given = map[string]bool{}
	}
	d := fileDecoder{name: name, s: s, warn: warn, byKey: map[string]*setting{}, given: given}
	table := settingTable()
	for i := range table {
		d.byKey[table[i].key] = &table[i]
	}
	return d.mapping(root, "")
}

type fileDecoder struct {
	name  string
	s     *Settings
	warn  func(string)
	byKey map[string]*setting
	given map[string]bool
}

// mapping decodes the pairs of a mapping node whose keys are under prefix
// ("" at the top level, "cloud_storage." in that section).
func (d *fileDecoder) mapping(n *yaml.Node, prefix string) error {
	seen := map[string]int{} // key -> line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s:%d: expected a setting name as key, got %s", d.name, k.Line, kindName(k))
		}
		// Ruby-symbol style keys: ":amqp_url:" is the key ":amqp_url".
		key := prefix + strings.TrimPrefix(k.Value, ":")
		if line, dup := seen[key]; dup {
			return fmt.Errorf("%s:%d: %s: set twice (first on line %d)", d.name, k.Line, key, line)
		}
		seen[key] = k.Line

		if prefix == "" && isSection(key) {
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return fmt.Errorf("%s:%d: %s: expected a mapping of settings, got %s", d.name, v.Line, key, kindName(v))
			}
			if err := d.mapping(v, key+"."); err != nil {
				return err
			}
			continue
		}

		st, ok := d.byKey[key]
		if !ok {
			d.warn(fmt.Sprintf("%s:%d: unknown setting %q is ignored", d.name, k.Line, key))
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s:%d: %s: expected a single value, got %s", d.name, v.Line, key, kindName(v))
		}
		if isNull(v) || v.Value == "" {
			continue // a value that renders empty counts as unset
		}
		if err := st.set(d.s, v.Value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", d.name, v.Line, key, err)
		}
		d.given[key] = true
		if key == "cloud_storage.provider" && !strings.EqualFold(v.Value, "AWS") {
			d.warn(fmt.Sprintf("%s:%d: cloud_storage.provider %q is ignored: only S3 (AWS) is supported", d.name, v.Line, v.Value))
		}
	}
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	default:
		return "something else"
	}
}
