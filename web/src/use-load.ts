// What every page loads from the dashboard API: the data, whether a request is running, and why
// the last one failed. Only the newest request's answer is applied, so a slow answer to an old
// filter or page can never overwrite a newer one; the data shown stays while a reload runs.
import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiFailure } from './api.ts';

export type Loaded<T> = {
  data: T | undefined;
  loading: boolean;
  error: string | null;
  reload: () => void;
};

export const failureMessage = (err: unknown, fallback: string): string =>
  err instanceof ApiFailure ? err.message : err instanceof Error && err.message ? `${fallback} (${err.message})` : fallback;

/** `deps` are plain values (ids, filters, a page cursor): a change to any of them loads again. */
export function useLoad<T>(fetch: () => Promise<T>, deps: readonly (string | number | boolean | null | undefined)[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  const latest = useRef(0);
  const fetchNow = useRef(fetch);
  fetchNow.current = fetch;
  const key = JSON.stringify(deps);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the deps' key and the reload count are the triggers
  useEffect(() => {
    const mine = ++latest.current;
    setLoading(true);
    fetchNow.current().then(
      (d) => {
        if (mine !== latest.current) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (mine !== latest.current) return;
        setError(failureMessage(err, 'The server could not be reached'));
        setLoading(false);
      },
    );
    // A newer load, or leaving the page, makes this answer stale.
    return () => void ++latest.current;
  }, [key, version]);
  const reload = useCallback(() => setVersion((v) => v + 1), []);
  return { data, loading, error, reload };
}
