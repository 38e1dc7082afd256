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

// Handle forwards r. tusd logs a client that went away mid-request
// (BodyReadError, InternalServerError) as an error; it is the client's
// doing, so it is forwarded as the INFO line "client went away".
func (e expHandler) Handle(ctx context.Context, r expslog.Record) error {
	level, msg := slog.Level(r.Level), r.Message
	var attrs []slog.Attr
	r.Attrs(func(a expslog.Attr) bool {
		attrs = append(attrs, convertAttr(a))
		if level >= slog.LevelError && (a.Key == "error" || a.Key == "message") && goneText(a.Value.String()) {
			level, msg = slog.LevelInfo, "client went away"
		}
		return true
	})
	if !e.h.Enabled(ctx, level) {
		return nil
	}
	rec := slog.NewRecord(r.Time, level, msg, r.PC)
	rec.AddAttrs(attrs...)
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
