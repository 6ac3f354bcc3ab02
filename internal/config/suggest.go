package config

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// indexes strips array indexes from a path: members[1] -> members.
var indexes = regexp.MustCompile(`\[\d+\]`)

// suggest is the known setting an unknown key in the table at path most likely meant,
// or "". It prefers, in order: the same name spelled with '-' or another case, a
// setting of the same table that starts with or contains the key, one within two
// typos, and the same name in another table ("fuel" at the top means "guest.fuel").
func suggest(path, key string) string {
	table := indexes.ReplaceAllString(path, "")
	k := normalize(key)
	if best := bestIn(settingsAt(table), k); best != "" {
		return strings.TrimPrefix(path+"."+best, ".")
	}
	for _, other := range tableNames() {
		if other == table {
			continue
		}
		for _, s := range settingsAt(other) {
			if s.name == k && s.kind != kTable && s.kind != kTables {
				return strings.TrimPrefix(other+"."+s.name, ".")
			}
		}
	}
	return ""
}

// tableNames are the top level ("") and the [tables] of the file, in file order.
func tableNames() []string {
	names := []string{""}
	for _, s := range fileSettings {
		if s.kind == kTable {
			names = append(names, s.name)
		}
	}
	return names
}

func settingsAt(table string) []setting {
	if table == "" {
		return fileSettings
	}
	s, ok := find(fileSettings, table)
	if !ok {
		return nil
	}
	return s.sub
}

func normalize(key string) string {
	return strings.ToLower(strings.ReplaceAll(key, "-", "_"))
}

func bestIn(settings []setting, k string) string {
	for _, match := range []func(name string) bool{
		func(name string) bool { return name == k },
		func(name string) bool { return strings.HasPrefix(name, k) },
		func(name string) bool { return len(k) >= 4 && strings.Contains(name, k) },
		func(name string) bool { return distance(name, k) <= 1 },
		func(name string) bool { return len(k) > 4 && distance(name, k) <= 2 },
	} {
		var found []string
		for _, s := range settings {
			if match(s.name) {
				found = append(found, s.name)
			}
		}
		if len(found) == 1 {
			return found[0]
		}
		if len(found) > 1 {
			return "" // ambiguous: better no hint than a wrong one
		}
	}
	return ""
}

// distance counts the typos (a byte inserted, deleted, changed, or two swapped) that
// turn a into b: the optimal string alignment distance. Keys are ASCII.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // not a typo of any setting
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
