// The demo pages' log, in plain words: what the SDK saw and what it does next.
(function () {
  var PHASES = { handshake: 'at the handshake', connected: 'while connected', credential: 'getting a ticket' };
  var ACTIONS = { reconnect: 'reconnecting', reload: 'reloading the page', handler: 'the page decides', stop: 'giving up' };
  window.demoLog = {
    /** `state: connecting → connected` */
    state: function (change) {
      return 'state: ' + change.oldState + ' → ' + change.newState;
    },
    /** `invalid: destroyed (while connected) → reconnecting` */
    invalid: function (ctx) {
      return 'invalid: ' + ctx.reason + ' (' + PHASES[ctx.phase] + ') → ' + ACTIONS[ctx.action];
    },
    /** `unavailable: store-timeout (at the handshake) → retrying in 1200 ms`, or mid-connection: the event was not run */
    unavailable: function (ctx) {
      return 'unavailable: ' + ctx.reason + ' (' + PHASES[ctx.phase] + ') → ' +
        (ctx.retryIn === undefined ? 'that event was not run' : 'retrying in ' + ctx.retryIn + ' ms');
    },
    /** `increment: failed (session-ended)`: an emit answered with the SDK's error (its reason), or `increment: no answer` (the timeout's) */
    failed: function (event, err) {
      return event + ': ' + (err.reason ? 'failed (' + err.reason + ')' : 'no answer');
    },
  };
})();
