module qlinear-consumer

go 1.21

require github.com/qlinear/qlinear-go v0.0.0

// The package's sources: this repository's bindings/go here; .ci/consumers.sh points it at
// the copy an install puts in <prefix>/share/qlinear/go.
replace github.com/qlinear/qlinear-go => ../../go
