module github.com/qlinear/qlinear-go

go 1.21
