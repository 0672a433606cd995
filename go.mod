module github.com/cairn-cm/cairn

go 1.26.0

require (
	github.com/alecthomas/kong v1.17.0
	github.com/rogpeppe/go-internal v1.16.0
	github.com/sergi/go-diff v1.4.0
	golang.org/x/sys v0.49.0
)

require golang.org/x/tools v0.26.0 // indirect
