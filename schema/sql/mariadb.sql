-- schema/sql/mariadb.sql - facteur's MariaDB/MySQL schema.
-- The tables and columns are PostfixAdmin's (domain, mailbox, alias,
-- alias_domain), so PostfixAdmin keeps administering the users that
-- facteur reads through the example mysql: tables in this folder.
-- Load with:  mariadb postfixadmin < schema/sql/mariadb.sql
-- A PostfixAdmin installation already has these tables: do not load this
-- file into it. Statements are idempotent (IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS domain (
  domain          varchar(255) NOT NULL,
  description     varchar(255) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
  aliases         int(10) NOT NULL DEFAULT 0,
  mailboxes       int(10) NOT NULL DEFAULT 0,
  maxquota        bigint(20) NOT NULL DEFAULT 0,
  quota           bigint(20) NOT NULL DEFAULT 0,
  transport       varchar(255) NOT NULL DEFAULT '',
  backupmx        tinyint(1) NOT NULL DEFAULT 0,
  created         datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  modified        datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  active          tinyint(1) NOT NULL DEFAULT 1,
  password_expiry int(11) DEFAULT 0,
  PRIMARY KEY (domain)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COMMENT='Postfix Admin - Virtual Domains';

CREATE TABLE IF NOT EXISTS mailbox (
  username        varchar(255) NOT NULL,
  password        varchar(255) NOT NULL,
  name            varchar(255) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
  maildir         varchar(255) NOT NULL,
  quota           bigint(20) NOT NULL DEFAULT 0,
  local_part      varchar(255) NOT NULL,
  domain          varchar(255) NOT NULL,
  created         datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  modified        datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  active          tinyint(1) NOT NULL DEFAULT 1,
  phone           varchar(30) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
  email_other     varchar(255) NOT NULL DEFAULT '',
  token           varchar(255) NOT NULL DEFAULT '',
  token_validity  datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  password_expiry datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  PRIMARY KEY (username),
  KEY domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COMMENT='Postfix Admin - Virtual Mailboxes';

-- goto is a comma-separated list of targets; PostfixAdmin also stores one
-- alias row per mailbox (address = goto = username).
CREATE TABLE IF NOT EXISTS alias (
  address   varchar(255) NOT NULL,
  goto      text NOT NULL,
  domain    varchar(255) NOT NULL,
  created   datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  modified  datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  active    tinyint(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (address),
  KEY domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COMMENT='Postfix Admin - Virtual Aliases';

CREATE TABLE IF NOT EXISTS alias_domain (
  alias_domain  varchar(255) NOT NULL,
  target_domain varchar(255) NOT NULL,
  created       datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  modified      datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  active        tinyint(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (alias_domain),
  KEY active (active),
  KEY target_domain (target_domain)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COMMENT='Postfix Admin - Domain Aliases';
