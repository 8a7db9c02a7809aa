import type { Loaded } from '../use-load.ts';

/**
 * What a page shows for its data while it is not there: "Loading…" on the first load, and an
 * error with a retry when a load failed (also above data loaded earlier, which stays on screen).
 */
export function LoadStatus(props: { state: Loaded<unknown>; what: string }) {
  const { state } = props;
  if (state.error)
    return (
      <div className="card load-failed" role="alert">
        <p className="error">
          Could not load {props.what}: {state.error}
        </p>
        <button type="button" onClick={state.reload} disabled={state.loading}>
          {state.loading ? 'Retrying…' : 'Try again'}
        </button>
      </div>
    );
  if (state.loading && state.data === undefined) return <p className="muted">Loading…</p>;
  return null;
}
