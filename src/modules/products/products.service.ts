import type { Db, Executor, Tx } from '../../db/client.js';
import type { UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { Clock } from '../../shared/clock.js';
import { Forbidden, NotFound, PreconditionFailed, PreconditionRequired } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import type { AuditLog } from '../audit/audit.service.js';
import { historyReads, type History, type VersionPage } from '../history/history.service.js';
import * as q from './products.queries.js';
import type { ExpectedReactionsDto } from './products.schemas.js';

export const EXPECTED_REACTIONS = 'product-expected-reactions';

export function toExpectedReactionsDto(r: q.ExpectedReactionsRow): ExpectedReactionsDto {
  return {
    productName: r.productName,
    reactions: r.reactions as ExpectedReactionsDto['reactions'],
    version: r.version,
    createdAt: r.createdAt.toISOString(),
    createdBy: r.createdBy,
    updatedAt: r.updatedAt.toISOString(),
    updatedBy: r.updatedBy,
  };
}

export interface ProductsDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  history: History;
  clock: Clock;
}

export type ProductsService = ReturnType<typeof createProductsService>;

/**
 * Products' reference lists of expected reactions (contract, "Safety"): supplier records, shared by every clinic,
 * keyed by the lots' `productName`. Reads are not patient data (unaudited, like lots); every change is a new
 * version (record_versions, under the list's id) with its audit entry, in one transaction.
 */
export function createProductsService({ db, uow, audit, history, clock }: ProductsDeps) {
  const versionReads = historyReads(db, audit, { resourceType: EXPECTED_REACTIONS, noun: 'expected-reaction list', record: q.byName, clinicColumn: null });

  return {
    /** The product's list; 404 (`NotFound`) when none was ever recorded (an emptied list is `reactions: []`). */
    async get(productName: string): Promise<ExpectedReactionsDto> {
      const row = await q.findList(db, productName);
      if (!row) throw new NotFound('expected-reaction list for that product');
      return toExpectedReactionsDto(row);
    },

    /**
     * Records the product's whole list. With no list yet, creates version 1 (`created: true`); an `ifMatch` given
     * then is refused (412: there is no version to match). Once a list exists, `ifMatch` (the version read) is
     * required: 428 `if-match-required` without it, 412 `version-mismatch` when it is not the current version.
     * The same reactions (in any order) as now change nothing: no new version, one audit entry.
     * The list is the supplier's (the investigator brochure's): it decides expectedness, and with it whether an IND
     * safety report clock runs, for every clinic's events; a token acting for a clinic is 403 `supplier-only`.
     */
    async put(actor: Actor, productName: string, reactions: string[], ifMatch: number | undefined): Promise<{ list: ExpectedReactionsDto; created: boolean }> {
      if (actor.clinicId !== null) {
        throw new Forbidden("A product's expected reactions are the supplier's to keep: use a token that acts for no clinic.", 'supplier-only');
      }
      return uow.run(async (tx) => {
        const now = clock.now();
        const current = await q.lockList(tx, productName);
        if (!current) {
          if (ifMatch !== undefined) throw new PreconditionFailed(`The product has no expected-reaction list yet, so there is no version ${ifMatch}; send the first one without If-Match.`);
          const row = await q.insertList(tx, { productName, id: newId(), reactions, version: 1, createdAt: now, updatedAt: now, createdBy: actor.sub, updatedBy: actor.sub });
          // Another request created it first: this one did not see that list, so it must read it and send If-Match.
          if (!row) throw new PreconditionRequired('The product\'s expected-reaction list was just created by another request; read it and send If-Match with its ETag.');
          return { list: await recorded(tx, actor, row, 'create', reactions), created: true };
        }
        if (ifMatch === undefined) throw new PreconditionRequired('The product already has an expected-reaction list: send If-Match with the ETag of the version you read.');
        if (current.version !== ifMatch) {
          throw new PreconditionFailed(`The expected-reaction list is at version ${current.version}, not ${ifMatch}; read it again and reapply your change.`);
        }
        if (sameTerms(current.reactions, reactions)) {
          await audit.record(tx, actor, { action: 'update', resourceType: EXPECTED_REACTIONS, resourceId: current.id, details: { productName, changedFields: [], version: current.version } });
          return { list: toExpectedReactionsDto(current), created: false };
        }
        const row = await q.updateList(tx, productName, { reactions, updatedAt: now, updatedBy: actor.sub });
        return { list: await recorded(tx, actor, row, 'update', reactions), created: false };
      });
    },

    /** Every version of the product's list, oldest first; audited as a history read. 404 when it has none. */
    history(actor: Actor, productName: string, page: VersionPage) {
      return versionReads.list<ExpectedReactionsDto>(actor, { productName }, page);
    },

    /**
     * The expected reactions of a lot's product, as the caller's transaction sees them ([] when the product has no
     * list; undefined for an unknown lot): what an adverse event's expectedness is judged against.
     */
    expectedForLot(exec: Executor, lotId: string): Promise<string[] | undefined> {
      return q.expectedForLot(exec, lotId);
    },
  };

  async function recorded(tx: Tx, actor: Actor, row: q.ExpectedReactionsRow, action: 'create' | 'update', reactions: string[]) {
    const dto = toExpectedReactionsDto(row);
    await history.record(tx, { resourceType: EXPECTED_REACTIONS, resourceId: row.id, version: row.version, clinicId: null, body: dto, by: actor.sub });
    await audit.record(tx, actor, { action, resourceType: EXPECTED_REACTIONS, resourceId: row.id, details: { productName: row.productName, reactions, version: row.version } });
    return dto;
  }
}

function sameTerms(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
}
