/** One figure in a row of stat cards. */
export function Stat(props: { label: string; value: string; testId?: string }) {
  return (
    <div className="card stat">
      <span className="label">{props.label}</span>
      <span className="value" data-testid={props.testId}>
        {props.value}
      </span>
    </div>
  );
}
