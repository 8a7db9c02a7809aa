// Pieces every capability's HTTP schemas share (TypeBox only: the web app type-checks these too).
import { type TSchema, Type } from 'typebox';

/** `t`, or null. */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** An amount shown in cents: a decimal to 4 places, since amounts are kept in integer micro-USD. */
export const Cents = Type.Number({ description: 'US cents, to 4 decimal places (amounts are kept in integer micro-USD)' });

/** A key's mode: live keys are billed, test keys are answered by the simulator and never billed. */
export const KeyMode = Type.Union([Type.Literal('live'), Type.Literal('test')]);

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('member')]);
