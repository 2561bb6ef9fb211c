import { v7 } from 'uuid';

/** Time-ordered UUIDs (v7): ids sort in creation order, which makes the cursor of every list stable and cheap. */
export const newId = (): string => v7();
