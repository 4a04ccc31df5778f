// gomathrand writes n bytes of Go math/rand (v1) output for a seed, the
// stream kubo's old `random-data -size=N -seed=S` tool produced. Used only
// to regenerate the go-mathrand-v1 UnixFS fixture inputs (see
// fixtures/unixfs/README.md); the spec checks the sha256 before use.
package main

import (
	"bufio"
	"flag"
	"io"
	"math/rand"
	"os"
)

func main() {
	n := flag.Int64("n", 0, "bytes to write")
	seed := flag.Int64("seed", 0, "math/rand seed")
	flag.Parse()
	r := rand.New(rand.NewSource(*seed))
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	if _, err := io.CopyN(w, r, *n); err != nil {
		panic(err)
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
}
