import type { ReactNode } from 'react';
import type { Account } from '../api.ts';
import { dollars } from '../format.ts';

const NAV = [
  { href: '/developers/api-keys', label: 'API Keys' },
  { href: '/developers/billing', label: 'Billing' },
  { href: '/developers/usage', label: 'Usage' },
  { href: '/developers/getting-started', label: 'Getting started' },
];

export function Layout(props: { route: string; account: Account; onSignOut: () => void; children: ReactNode }) {
  return (
    <div className="shell">
      <aside className="sidebar">
        <a className="brand" href="#/developers/api-keys">
          <span className="brand-mark">B</span> Bizora
        </a>
        <nav aria-label="Main">
          <div className="nav-group">Developers</div>
          <ul>
            {NAV.map((item) => (
              <li key={item.href}>
                <a
                  href={`#${item.href}`}
                  className={props.route.startsWith(item.href) ? 'active' : ''}
                  aria-current={props.route.startsWith(item.href) ? 'page' : undefined}
                >
                  {item.label}
                </a>
              </li>
            ))}
            <li>
              <a href="/docs" target="_blank" rel="noopener">
                API reference
              </a>
            </li>
          </ul>
          {props.account.role === 'admin' ? (
            <>
              <div className="nav-group">Administration</div>
              <ul>
                <li>
                  <a
                    href="#/admin/accounts"
                    className={props.route.startsWith('/admin/accounts') ? 'active' : ''}
                    aria-current={props.route.startsWith('/admin/accounts') ? 'page' : undefined}
                  >
                    Accounts
                  </a>
                </li>
              </ul>
            </>
          ) : null}
        </nav>
      </aside>
      <div className="main">
        <header className="topbar">
          <span className="balance" title="Available balance">
            {dollars(props.account.available_cents)} available
          </span>
          <span className="who">
            {props.account.email}
            {props.account.role === 'admin' ? <span className="badge">admin</span> : null}
          </span>
          <button type="button" className="link" onClick={props.onSignOut}>
            Sign out
          </button>
        </header>
        <main className="content">{props.children}</main>
      </div>
    </div>
  );
}
