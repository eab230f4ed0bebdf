package config

// EnvNames returns the environment variables the settings are read from,
// each once, in the order of --help. Manifests and unit files that set the
// executor's environment are checked against it (examples/kubernetes).
func EnvNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, st := range settingTable() {
		if st.env != "" && !seen[st.env] {
			seen[st.env] = true
			names = append(names, st.env)
		}
	}
	return names
}
