package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/webcaresync/webcaresync/schemas"
)

// signalEach sends one event per second, starting at one second.
func signalEach(env interface {
	RegisterDelayedCallback(func(), time.Duration)
	SignalWorkflow(string, any)
}, ids ...string) {
	for i, id := range ids {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: []schemas.Event{ev(id, "hoi")}})
		}, time.Duration(i+1)*time.Second)
	}
}

func TestConversationFlushIntervalGathersBatches(t *testing.T) {
	env, rec := newEnv(t)
	signalEach(env, "m1", "m2", "m3", "m4")
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: time.Hour, FlushInterval: 10 * time.Second})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, [][]string{{"m1"}, {"m2", "m3", "m4"}}, rec.batches,
		"the first event goes at once; the next wait for the interval and go together")
}

func TestConversationWithoutFlushIntervalWritesAtOnce(t *testing.T) {
	env, rec := newEnv(t)
	signalEach(env, "m1", "m2", "m3")
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: time.Hour})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, [][]string{{"m1"}, {"m2"}, {"m3"}}, rec.batches)
}
