# riskflow: one static binary. Build: docker build -t riskflow .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/riskflow ./cmd/riskflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/riskflow /usr/local/bin/riskflow
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/riskflow"]
CMD ["serve", "--roles", "scorer,archiver,api"]
