import { Component, type ReactNode } from 'react';

/**
 * A page that fails to render, or whose code cannot be loaded (the server was updated and the
 * old chunk is gone, or the network dropped), shows a message with a reload instead of taking
 * the whole dashboard down. Keyed by route, so moving to another page starts afresh.
 */
export class PageErrorBoundary extends Component<{ children: ReactNode }, { failed: boolean }> {
  override state = { failed: false };

  static getDerivedStateFromError(): { failed: boolean } {
    return { failed: true };
  }

  override render(): ReactNode {
    if (!this.state.failed) return this.props.children;
    return (
      <div className="card load-failed" role="alert">
        <p className="error">This page could not be loaded (the dashboard may have been updated, or the connection dropped).</p>
        <button type="button" onClick={() => window.location.reload()}>
          Reload
        </button>
      </div>
    );
  }
}
