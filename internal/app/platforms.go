package app

import (
	"github.com/webcaresync/webcaresync/activities/platforms"
	"github.com/webcaresync/webcaresync/activities/platforms/meta"
	"github.com/webcaresync/webcaresync/activities/platforms/x"
)

// platforms returns the social platforms whose API credentials are
// configured. Erasure records the others as not possible through the API.
func (a *App) platforms() []platforms.Platform {
	var out []platforms.Platform
	if t := a.Cfg.Platforms.XToken; t != "" {
		out = append(out, x.New(x.Config{BaseURL: a.Cfg.Platforms.XBaseURL, UserToken: t, Logger: a.Log.Named("x")}))
	}
	if t := a.Cfg.Platforms.MetaToken; t != "" {
		out = append(out, meta.New(meta.Config{BaseURL: a.Cfg.Platforms.MetaBaseURL, PageToken: t, Logger: a.Log.Named("meta")}))
	}
	return out
}
