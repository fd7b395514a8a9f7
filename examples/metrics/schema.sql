-- The metrics example's database (scenario S2): who may see which rows is
-- decided here, by PostgreSQL roles and row-level security, not by the MCP
-- server and not by mcpgate.
--
--   alice  sees acme and globex         (cs-engineering)
--   bob    sees initech                 (cs-engineering)
--   carol  sees no metrics, may annotate (csm)
--
-- The people are NOLOGIN roles. The MCP server logs in as metrics_gateway,
-- which may not read or write any table itself: it is only a member of the
-- people's roles (NOINHERIT, so it gets none of their rights by being one),
-- and each tool call runs in a transaction that first does
-- SET LOCAL ROLE <the caller>.
--
-- Apply as a superuser (or a role with CREATEROLE that owns the tables), as
-- often as you like: every statement is idempotent.
--
--   psql -v ON_ERROR_STOP=1 -d DB -f schema.sql
--   metrics-server -init ADMIN_DSN ...           (the same, from Go)
--
-- Roles are global to the PostgreSQL cluster, databases are not. To keep
-- several copies apart in one cluster (the tests do), set a role prefix
-- first: PGOPTIONS='-c metrics.role_prefix=t1_' psql ..., or
-- metrics-server -role-prefix t1_. Every role name below is then prefixed
-- (t1_alice, t1_metrics_gateway), and so is the role the server switches to.

BEGIN;

-- The customers the metrics and annotations are about.
CREATE TABLE IF NOT EXISTS customers (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]*$')
);

CREATE TABLE IF NOT EXISTS customer_metrics (
  customer     text    NOT NULL REFERENCES customers (name),
  month        text    NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
  active_users int     NOT NULL CHECK (active_users >= 0),
  revenue      numeric NOT NULL,
  PRIMARY KEY (customer, month)
);

CREATE TABLE IF NOT EXISTS annotations (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer   text        NOT NULL REFERENCES customers (name),
  month      text        NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
  note       text        NOT NULL CHECK (length(note) BETWEEN 1 AND 2000),
  author     name        NOT NULL DEFAULT current_user,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Which database role may see which customer's metrics. The row-level
-- security policy on customer_metrics reads it as the querying role, and
-- that role sees only its own rows here.
CREATE TABLE IF NOT EXISTS customer_access (
  db_role  name NOT NULL,
  customer text NOT NULL REFERENCES customers (name),
  PRIMARY KEY (db_role, customer)
);

-- Row-level security, forced: it applies to the tables' owner too (only
-- superusers and BYPASSRLS roles skip it; the server's role is neither).
ALTER TABLE customer_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_metrics FORCE ROW LEVEL SECURITY;
ALTER TABLE customer_access ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_access FORCE ROW LEVEL SECURITY;
ALTER TABLE annotations ENABLE ROW LEVEL SECURITY;
ALTER TABLE annotations FORCE ROW LEVEL SECURITY;

-- A role sees the metrics of the customers customer_access gives it.
DROP POLICY IF EXISTS metrics_of_my_customers ON customer_metrics;
CREATE POLICY metrics_of_my_customers ON customer_metrics FOR SELECT
  USING (EXISTS (SELECT 1 FROM customer_access a
                 WHERE a.db_role = current_user AND a.customer = customer_metrics.customer));

DROP POLICY IF EXISTS my_access ON customer_access;
CREATE POLICY my_access ON customer_access FOR SELECT
  USING (db_role = current_user);

-- Annotations are signed by the role that writes them, and each role sees
-- its own (what INSERT ... RETURNING needs).
DROP POLICY IF EXISTS annotate_as_myself ON annotations;
CREATE POLICY annotate_as_myself ON annotations FOR INSERT
  WITH CHECK (author = current_user);
DROP POLICY IF EXISTS my_annotations ON annotations;
CREATE POLICY my_annotations ON annotations FOR SELECT
  USING (author = current_user);

REVOKE ALL ON customers, customer_metrics, annotations, customer_access FROM PUBLIC;

-- The roles, their rights and who sees which customer. Role names are
-- prefixed with metrics.role_prefix (empty unless set), hence dynamic SQL.
DO $roles$
DECLARE
  prefix  text := coalesce(current_setting('metrics.role_prefix', true), '');
  gateway text := prefix || 'metrics_gateway';
  person  text;
BEGIN
  IF prefix !~ '^[a-z0-9_]*$' THEN
    RAISE EXCEPTION 'metrics.role_prefix %: only a-z, 0-9 and _ are allowed', prefix;
  END IF;

  FOREACH person IN ARRAY ARRAY['alice', 'bob', 'carol'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = prefix || person) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', prefix || person);
    END IF;
    -- Everyone may query the metrics: row-level security decides the rows.
    EXECUTE format('GRANT SELECT ON customer_metrics, customer_access TO %I', prefix || person);
  END LOOP;
  -- Only carol (csm) writes annotations.
  EXECUTE format('GRANT SELECT, INSERT ON annotations TO %I', prefix || 'carol');

  -- The server's login: no rights of its own (NOINHERIT), may only become
  -- one of the people. Production would add a password or a certificate.
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = gateway) THEN
    EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT', gateway);
  END IF;
  FOREACH person IN ARRAY ARRAY['alice', 'bob', 'carol'] LOOP
    EXECUTE format('GRANT %I TO %I', prefix || person, gateway);
  END LOOP;

  INSERT INTO customers (name) VALUES ('acme'), ('globex'), ('initech')
    ON CONFLICT DO NOTHING;
  INSERT INTO customer_access (db_role, customer)
    SELECT prefix || v.person, v.customer
    FROM (VALUES ('alice', 'acme'), ('alice', 'globex'), ('bob', 'initech')) AS v (person, customer)
    ON CONFLICT DO NOTHING;
END
$roles$;

INSERT INTO customer_metrics (customer, month, active_users, revenue) VALUES
  ('acme',    '2026-10', 1200, 48000.00),
  ('acme',    '2026-11', 1350, 52500.00),
  ('globex',  '2026-10',  640, 21750.50),
  ('globex',  '2026-11',  610, 20980.00),
  ('initech', '2026-10',  310,  9900.00),
  ('initech', '2026-11',  355, 11240.75)
ON CONFLICT DO NOTHING;

COMMIT;
