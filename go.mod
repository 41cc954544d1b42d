module github.com/cpmlink/cpmlink

go 1.26

require (
	github.com/dave/jennifer v1.7.1 // indirect
	github.com/looplab/fsm v1.0.3 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	pgregory.net/rapid v1.3.0 // indirect
)
