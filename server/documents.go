package main

import (
	"fmt"
	"log/slog"
	"maps"
	"os"

	"github.com/authql/authql/graph"
)

// loadTrustedDocuments reads the persisted-documents manifests of
// APP_TRUSTED_DOCUMENTS into one set; nil if there are none (every
// document runs). A manifest that cannot be read, or whose hashes do not
// match its documents, stops the start: a server that ran with half its
// allow-list would refuse its own clients.
func loadTrustedDocuments(paths []string, log *slog.Logger) (graph.Documents, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	all := graph.Documents{}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("APP_TRUSTED_DOCUMENTS: %w", err)
		}
		docs, err := graph.ParseManifest(data)
		if err != nil {
			return nil, fmt.Errorf("APP_TRUSTED_DOCUMENTS: %s: %w", path, err)
		}
		maps.Copy(all, docs)
	}
	log.Info("trusted documents: only the documents of these manifests run", slog.Any("manifests", paths), slog.Int("documents", len(all)))
	return all, nil
}
