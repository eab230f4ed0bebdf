package config

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRenderTemplates(t *testing.T) {
	cpus := strconv.Itoa(max(runtime.NumCPU(), 1))
	env := envMap(map[string]string{
		"AMQP_URL":  "amqp://u:p@h:5672/",
		"STORAGE":   "nfs",
		"HASH":      "a #b: c",
		"QUOTES":    `say "hi" it's`,
		"MULTILINE": "one\ntwo",
	})
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"no template", "a: b\n", "a: b\n"},
		{"env whole value", ":amqp_url: <%= ENV['AMQP_URL'] %>\n", `:amqp_url: "amqp://u:p@h:5672/"` + "\n"},
		{"env double quotes", `x: <%= ENV["STORAGE"] %>`, `x: "nfs"`},
		{"env no spaces", `x: <%=ENV['STORAGE']%>`, `x: "nfs"`},
		{"unset env is empty", "x: <%= ENV['NOPE'] %>\n", "x: \n"},
		{"|| default unused", "x: <%= ENV['STORAGE'] || 'cloud' %>", `x: "nfs"`},
		{"|| default", "x: <%= ENV['NOPE'] || 'cloud' %>", `x: "cloud"`},
		{"or default double quoted", `x: <%= ENV['NOPE'] or "cloud" %>`, `x: "cloud"`},
		{"or default keeps spaces", `  :proxy: <%= ENV['X509_USER_PROXY'] or "./grid_proxy "%>`, `  :proxy: "./grid_proxy "`},
		{"or default single quotes mixed", `x: <%= ENV["NOPE"] or 'it"s' %>`, `x: "it\"s"`},
		{"empty default", `x: <%= ENV['NOPE'] || '' %>`, `x: `},
		{"cpu count", ":threads: <%= Executor::cpu_count %>", `:threads: "` + cpus + `"`},
		{"comment after", "x: <%= ENV['STORAGE'] %> # note", `x: "nfs" # note`},
		{"yaml specials quoted", "x: <%= ENV['HASH'] %>", `x: "a #b: c"`},
		{"quotes escaped", "x: <%= ENV['QUOTES'] %>", `x: "say \"hi\" it's"`},
		{"newline escaped", "x: <%= ENV['MULTILINE'] %>\ny: 1\n", `x: "one\ntwo"` + "\ny: 1\n"},
		{"list item", "  - <%= ENV['STORAGE'] %>", `  - "nfs"`},
		{"inside double quotes", `x: "<%= ENV['QUOTES'] %>"`, `x: "say \"hi\" it's"`},
		{"inside single quotes", `x: '<%= ENV['QUOTES'] %>'`, `x: 'say "hi" it''s'`},
		{"part of a value", "x: http://<%= ENV['STORAGE'] %>:80/", "x: http://nfs:80/"},
		{"two tags", "x: <%= ENV['STORAGE'] %>-<%= ENV['STORAGE'] %>", "x: nfs-nfs"},
		{"crlf kept", "x: <%= ENV['STORAGE'] %>\r\ny: 2\r\n", "x: \"nfs\"\r\ny: 2\r\n"},
		{"closing marker alone", "x: 50%> y", "x: 50%> y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderTemplates("settings.yml", []byte(tt.in), env)
			if err != nil {
				t.Fatalf("renderTemplates: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("renderTemplates(%q) =\n%q, want\n%q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRenderTemplatesErrors(t *testing.T) {
	env := envMap(map[string]string{"MULTILINE": "one\ntwo"})
	tests := []struct {
		name string
		in   string
		want string // the whole error message
	}{
		{
			"other ruby", "a: 1\nb: <%= ENV['X'].upcase %>\n",
			`settings.yml:2: template <%= ENV['X'].upcase %>: unsupported template; only ` + supportedTags + ` are supported`,
		},
		{"code tag", "<% if true %>\n", "settings.yml:1: template <% if true %>: unsupported template"},
		{"comment tag", "a: 1\n\n<%# comment %>\n", "settings.yml:3: template <%# comment %>: unsupported template"},
		{"fetch", "x: <%= ENV.fetch('X', 'y') %>", "settings.yml:1: template <%= ENV.fetch('X', 'y') %>: unsupported"},
		{"trim tag", "x: <%= ENV['X'] -%>", "settings.yml:1: template <%= ENV['X'] -%>: unsupported"},
		{"other constant", "x: <%= Executor::memory %>", "settings.yml:1: template <%= Executor::memory %>: unsupported"},
		{"empty name", "x: <%= ENV[''] %>", "settings.yml:1: template <%= ENV[''] %>: unsupported"},
		{"mismatched quotes", `x: <%= ENV['X"] %>`, `settings.yml:1: template <%= ENV['X"] %>: unsupported`},
		{"three alternatives", "x: <%= ENV['X'] || 'a' || 'b' %>", "settings.yml:1: template <%= ENV['X'] || 'a' || 'b' %>: unsupported"},
		{"escaped tag", "x: <%%= 1 %>", "settings.yml:1: template <%%= 1 %>: unsupported"},
		{"not closed", "a: 1\nx: <%= ENV['X']\n %>\n", `settings.yml:2: template tag "<%= ENV['X']" is not closed on its line`},
		{"line break in part of a value", "x: a<%= ENV['MULTILINE'] %>b", "settings.yml:1: template <%= ENV['MULTILINE'] %>: the value holds a line break"},
		{"line break in single quotes", "x: '<%= ENV['MULTILINE'] %>'", "settings.yml:1: template <%= ENV['MULTILINE'] %>: the value holds a line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderTemplates("settings.yml", []byte(tt.in), env)
			if err == nil {
				t.Fatalf("renderTemplates(%q) succeeded, want error %q", tt.in, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to start with %q", err, tt.want)
			}
		})
	}
}
