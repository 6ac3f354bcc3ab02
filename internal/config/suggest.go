package config

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/ftvs/ftvs/internal/suggest"
)

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// indexes strips array indexes from a path: members[1] -> members.
var indexes = regexp.MustCompile(`\[\d+\]`)

// closestSetting is the known setting an unknown key in the table at path most likely
// meant, or "": the closest setting of the same table (suggest.Closest), else the same
// name in another table ("fuel" at the top means "guest.fuel").
func closestSetting(path, key string) string {
	table := indexes.ReplaceAllString(path, "")
	var names []string
	for _, s := range settingsAt(table) {
		names = append(names, s.name)
	}
	if best, ok := suggest.Closest(key, names); ok {
		return strings.TrimPrefix(path+"."+best, ".")
	}
	k := suggest.Normalize(key)
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
