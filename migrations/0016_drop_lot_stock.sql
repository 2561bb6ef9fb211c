-- The per-clinic counters are replaced by the vials themselves (0015 checked that they account for the same
-- counts); a counter row on the procedure write path made concurrent procedures on one lot queue on it.
DROP TABLE "lot_stock" CASCADE;
