// tiles_check: an independent check of a directory that `modelseal publish` wrote, with the
// Go module golang.org/x/mod/sumdb/tlog (and .../note), not with this project's code.
//
// Usage: tiles_check DIR VKEY
//
// It verifies DIR/checkpoint's signature with the note verifier key VKEY, reads the tree
// size and root from the checkpoint's second and third lines (tlog.ParseTree expects the
// go.sum database's own first line, and modelseal's checkpoints carry an extension line, so
// the body is parsed here as c2sp.org/tlog-checkpoint says), then:
//   - computes the tree hash with tlog.TreeHash over tlog.TileHashReader reading DIR/tile/...
//     (each tile read is authenticated against the tree hash by the reader);
//   - reads every stored hash of every leaf (tlog.StoredHashIndex(0, i)) through the same
//     reader, which fetches and authenticates every tile of every level;
//   - with DIR/tile/entries present, checks that each entry of each bundle hashes
//     (tlog.RecordHash) to its leaf hash, and that the bundles hold exactly the tree's entries.
//
// C2SP tlog-tiles paths are the go.sum database's without the height element: the Go path
// tile/8/L/N[.p/W] is DIR/tile/L/N[.p/W]. Prints "ok SIZE ROOT LEAVES ENTRIES" and exits 0, or
// prints the failure and exits 1.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

type dirTiles struct {
	dir   string
	reads int
}

func (d *dirTiles) Height() int { return height }

func c2spPath(t tlog.Tile) string {
	// tlog's path is "tile/8/<L>/<N>[.p/<W>]"; C2SP drops the height.
	p := t.Path()
	prefix := "tile/" + strconv.Itoa(height) + "/"
	if !strings.HasPrefix(p, prefix) {
		panic("unexpected tile path " + p)
	}
	return filepath.Join("tile", filepath.FromSlash(strings.TrimPrefix(p, prefix)))
}

func (d *dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := os.ReadFile(filepath.Join(d.dir, c2spPath(t)))
		if err != nil {
			return nil, err
		}
		if len(data) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s: %d bytes, want %d", c2spPath(t), len(data), t.W*tlog.HashSize)
		}
		out[i] = data
		d.reads++
	}
	return out, nil
}

func (d *dirTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func fail(format string, args ...any) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func parseCheckpoint(text string) (int64, tlog.Hash) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		fail("checkpoint body has fewer than three lines")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		fail("checkpoint size %q", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		fail("checkpoint root %q", lines[2])
	}
	var h tlog.Hash
	copy(h[:], raw)
	return n, h
}

// mth is RFC 6962's Merkle Tree Hash over leaf hashes, with tlog.NodeHash.
func mth(hs []tlog.Hash) tlog.Hash {
	if len(hs) == 0 {
		return tlog.Hash(sha256.Sum256(nil))
	}
	if len(hs) == 1 {
		return hs[0]
	}
	k := 1
	for k*2 < len(hs) {
		k *= 2
	}
	return tlog.NodeHash(mth(hs[:k]), mth(hs[k:]))
}

func main() {
	if len(os.Args) != 3 {
		fmt.Println("usage: tiles_check DIR VKEY")
		os.Exit(2)
	}
	dir, vkey := os.Args[1], os.Args[2]
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fail("%v", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	size, root := parseCheckpoint(n.Text)

	tiles := &dirTiles{dir: dir}
	tree := tlog.Tree{N: size, Hash: root}
	reader := tlog.TileHashReader(tree, tiles)
	got, err := tlog.TreeHash(size, reader)
	if err != nil {
		fail("tree hash: %v", err)
	}
	if got != root {
		fail("tree hash %v, checkpoint says %v", got, root)
	}

	leaves := make([]tlog.Hash, 0, size)
	for start := int64(0); start < size; start += 1 << height {
		end := start + 1<<height
		if end > size {
			end = size
		}
		idx := make([]int64, 0, end-start)
		for i := start; i < end; i++ {
			idx = append(idx, tlog.StoredHashIndex(0, i))
		}
		hs, err := reader.ReadHashes(idx)
		if err != nil {
			fail("leaves %d..%d: %v", start, end-1, err)
		}
		leaves = append(leaves, hs...)
	}
	// Independently of the tiles, the leaf hashes alone must give the root (RFC 6962 MTH).
	if got := mth(leaves); got != root {
		fail("the leaf hashes give root %v, checkpoint says %v", got, root)
	}

	entries := 0
	if _, err := os.Stat(filepath.Join(dir, "tile", "entries")); err == nil {
		for start := int64(0); start < size; start += 1 << height {
			w := size - start
			if w > 1<<height {
				w = 1 << height
			}
			t := tlog.Tile{H: height, L: 0, N: start >> height, W: int(w)}
			rel := strings.Replace(c2spPath(t), filepath.Join("tile", "0"), filepath.Join("tile", "entries"), 1)
			data, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				fail("entry bundle: %v", err)
			}
			for k := int64(0); k < w; k++ {
				if len(data) < 2 {
					fail("%s: ends before entry %d", rel, start+k)
				}
				l := int(data[0])<<8 | int(data[1])
				if len(data) < 2+l {
					fail("%s: entry %d is cut short", rel, start+k)
				}
				if tlog.RecordHash(data[2:2+l]) != leaves[start+k] {
					fail("%s: entry %d does not hash to its leaf", rel, start+k)
				}
				data = data[2+l:]
				entries++
			}
			if len(data) != 0 {
				fail("%s: %d bytes after its last entry", rel, len(data))
			}
		}
	}
	fmt.Printf("ok %d %s %d %d %d\n", size, base64.StdEncoding.EncodeToString(root[:]), len(leaves), entries, tiles.reads)
}
