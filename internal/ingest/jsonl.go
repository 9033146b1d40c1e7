package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/internal/channels/generic"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// importBatch is how many lines one Ingest call of the import carries.
const importBatch = 500

// maxLine bounds one JSONL line, like a webhook body.
const maxLine = 1 << 20

// ImportResult counts what an import did.
type ImportResult struct {
	Lines      int64
	Accepted   int
	Duplicates int
	Suppressed int
	// Resumed is the byte offset the import continued from.
	Resumed int64
}

// Progress is told the bytes read so far and the file's size.
type Progress func(done, total int64)

// ImportJSONL hands every canonical event in the JSONL file at path to its
// conversation workflow. It is idempotent (dedupe) and resumable: the byte
// offset of the last durably accepted batch is checkpointed, and a run
// after an interruption continues there. Events of erased subjects, and
// every event of a conversation an erasure deleted (the brand's replies
// too), are skipped. A bad line stops the import with its line number and field;
// nothing after it is read.
func ImportJSONL(ctx context.Context, in *Ingestor, cp store.Checkpoints, path string, progress Progress) (ImportResult, error) {
	var res ImportResult
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return res, err
	}
	name, err := checkpointName(f)
	if err != nil {
		return res, err
	}
	offset, err := cp.GetCheckpoint(ctx, name)
	if err != nil {
		return res, fmt.Errorf("cannot read the import checkpoint: %w", err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return res, err
	}
	res.Resumed = offset
	r := bufio.NewReaderSize(f, 64<<10)
	pos := offset
	var batch []schemas.Event
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := in.Ingest(ctx, batch, Options{HonourSuppression: true})
		if err != nil {
			return err
		}
		res.Accepted += out.Accepted
		res.Duplicates += out.Duplicates
		res.Suppressed += out.Suppressed
		batch = batch[:0]
		// Checkpoint only after Temporal accepted the batch, so that an
		// interruption never skips an event.
		return cp.SetCheckpoint(context.WithoutCancel(ctx), name, pos)
	}
	for {
		if err := ctx.Err(); err != nil {
			return res, errors.Join(err, flush())
		}
		line, err := r.ReadBytes('\n')
		if len(line) > maxLine {
			return res, fmt.Errorf("%s: line %d is longer than 1 MiB", path, res.Lines+1)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			ev, perr := generic.ParseEvent(line)
			if perr != nil {
				var bad *channels.BadRequest
				if errors.As(perr, &bad) {
					perr = fmt.Errorf("%s: line %d: %s", path, res.Lines+1, bad.Error())
				}
				return res, errors.Join(perr, flush())
			}
			batch = append(batch, ev)
		}
		if len(line) > 0 {
			res.Lines++
			pos += int64(len(line))
		}
		if len(batch) >= importBatch {
			if ferr := flush(); ferr != nil {
				return res, ferr
			}
			if progress != nil {
				progress(pos, info.Size())
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if progress != nil {
		progress(pos, info.Size())
	}
	return res, nil
}

// checkpointName identifies a file by its content, so that a changed file
// is imported from the start (dedupe still drops what was sent before).
func checkpointName(f *os.File) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return "import:" + hex.EncodeToString(h.Sum(nil))[:32], nil
}
