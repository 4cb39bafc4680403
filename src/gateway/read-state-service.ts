// The part of the persistent read-state engine the gateway calls: one name for it, so
// sessions, dispatch and the HTTP API depend on these methods rather than on the class.

import type { PersistentReadStates } from '../store/persistent-read-states.js';

export type ReadStateService = Pick<PersistentReadStates, 'loadUser' | 'createResident' | 'createMessage' | 'ackResident' | 'ack' | 'join' | 'leave' | 'viewOf' | 'viewInto' | 'view' | 'ready' | 'stats'>;
