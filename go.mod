module github.com/cpmlink/cpmlink

go 1.26
