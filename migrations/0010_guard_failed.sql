-- A change written in one statement (UnitOfWork.once) ends with its guards: the first one that does not hold
-- raises EG001 with the guard's name as detail, which rolls the whole statement back.
CREATE FUNCTION guard_failed(guard text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION 'guard % does not hold', guard USING ERRCODE = 'EG001', DETAIL = guard;
END;
$$;
