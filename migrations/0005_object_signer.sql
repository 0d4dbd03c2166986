-- The name of the trusted key whose signature an upload carried (serve --trusted-keys), or NULL
-- for an object stored while no keys were required. Set once, when the object is first stored.
ALTER TABLE objects ADD COLUMN signer TEXT CHECK (signer IS NULL OR length(signer) > 0);
