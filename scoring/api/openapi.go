package api

import (
	_ "embed"
	"net/http"
	"strconv"
)

// OpenAPI is the OpenAPI 3 document of this HTTP API, served at GET /v1/openapi.yaml without
// authentication. A test checks real answers of every route against it.
//
//go:embed openapi.yaml
var OpenAPI []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) (int, error) {
	if err := noQuery(r); err != nil {
		return 0, err
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Length", strconv.Itoa(len(OpenAPI)))
	w.WriteHeader(http.StatusOK)
	w.Write(OpenAPI)
	return http.StatusOK, nil
}
