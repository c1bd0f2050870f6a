package storage

import (
	"strconv"
	"testing"
)

func TestChunkOps(t *testing.T) {
	var ops []Op
	for i := range 250 {
		ops = append(ops, Op{Key: "k" + strconv.Itoa(i), Value: []byte("v")})
	}
	big := make([]byte, 700<<10)
	ops = append(ops, Op{Key: "big1", Value: big}, Op{Key: "big2", Value: big}, Op{Key: "last.json", Value: []byte("{}")})
	chunks := chunkOps(ops)
	var n int
	for i, c := range chunks {
		size := 0
		for _, op := range c {
			if op.Key != ops[n].Key {
				t.Fatalf("chunk %d: %s out of order (want %s)", i, op.Key, ops[n].Key)
			}
			n++
			size += len(op.Value)
		}
		if len(c) == 0 || len(c) > maxCopyBatchOps || (size > maxCopyBatchBytes && len(c) > 1) {
			t.Errorf("chunk %d: %d ops, %d bytes", i, len(c), size)
		}
	}
	if n != len(ops) || len(chunks) != 4 {
		t.Errorf("%d chunks holding %d ops; want 4 holding %d", len(chunks), n, len(ops))
	}
}
