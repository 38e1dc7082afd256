package upload

import (
	"context"
	"log/slog"

	expslog "golang.org/x/exp/slog"
)

// tusd v2 logs through golang.org/x/exp/slog, whose types differ from
// log/slog's; expHandler forwards its records to casedrop's logger.
type expHandler struct{ h slog.Handler }

func tusLogger(l *slog.Logger) *expslog.Logger {
	if l == nil {
		l = slog.Default()
	}
	return expslog.New(expHandler{l.Handler()})
}

func (e expHandler) Enabled(ctx context.Context, level expslog.Level) bool {
	return e.h.Enabled(ctx, slog.Level(level))
}

func (e expHandler) Handle(ctx context.Context, r expslog.Record) error {
	rec := slog.NewRecord(r.Time, slog.Level(r.Level), r.Message, r.PC)
	r.Attrs(func(a expslog.Attr) bool {
		rec.AddAttrs(convertAttr(a))
		return true
	})
	return e.h.Handle(ctx, rec)
}

func (e expHandler) WithAttrs(attrs []expslog.Attr) expslog.Handler {
	converted := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		converted[i] = convertAttr(a)
	}
	return expHandler{e.h.WithAttrs(converted)}
}

func (e expHandler) WithGroup(name string) expslog.Handler { return expHandler{e.h.WithGroup(name)} }

func convertAttr(a expslog.Attr) slog.Attr { return slog.Any(a.Key, a.Value.Resolve().Any()) }
