package qlinear_test

import (
	"errors"
	"fmt"

	qlinear "github.com/qlinear/qlinear-go"
)

// Quantize a 256 -> 64 layer to INT8, run one row through it and see what it saves.
func Example() {
	dev, err := qlinear.NewDevice(0) // one worker per core
	if err != nil {
		panic(err)
	}
	defer dev.Close()

	const in, out = 256, 64
	weights := make([]float32, out*in)
	for i := range weights {
		weights[i] = float32(i%17-8) / 64
	}
	cfg, err := qlinear.NewQuantConfigInt8()
	if err != nil {
		panic(err)
	}
	defer cfg.Close()
	layer, err := qlinear.Quantize(dev, weights, nil, in, out, cfg)
	if err != nil {
		panic(err)
	}
	defer layer.Close()

	x := make([]float32, in)
	x[0] = 1
	y, err := layer.Forward(x, 1)
	if err != nil {
		panic(err)
	}
	fmt.Printf("y[0:3] = %.2f\n", y[:3])
	fmt.Printf("%d-bit weights: %d bytes, saved %d of %d\n", layer.Bits(), layer.WeightBytes(), layer.MemorySaved(), 4*in*out)

	_, err = layer.Forward(x, 2) // x holds one row, not two
	fmt.Println(errors.Is(err, qlinear.ErrInvalidArgument))
	// Output:
	// y[0:3] = [-0.13 -0.11 -0.09]
	// 8-bit weights: 17408 bytes, saved 48128 of 65536
	// true
}
