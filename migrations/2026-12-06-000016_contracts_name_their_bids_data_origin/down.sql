-- The origins filled in are correct; there is nothing to undo.
SELECT 1;
