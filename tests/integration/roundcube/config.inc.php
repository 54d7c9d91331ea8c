<?php
// Roundcube's configuration for tests/integration/test_roundcube.py. The test copies Debian's
// defaults.inc.php next to this file in a temp dir and points Roundcube there
// (ROUNDCUBE_CONFIG_DIR); the upper-case names between at signs are PHP literals that it
// fills in.
$config = [];

// imapd under test on loopback, plain IMAP (the test's LOGIN goes through pam_wrapper).
$config['imap_host'] = @IMAP_HOST@;
$config['smtp_host'] = '';
$config['imap_cache'] = null;
$config['messages_cache'] = false;

// Everything Roundcube keeps goes into the test's temp dir.
$config['db_dsnw'] = @DB_DSN@;
$config['log_driver'] = 'file';
$config['log_dir'] = @LOG_DIR@;
$config['temp_dir'] = @TEMP_DIR@;
// The IMAP conversation, written to log_dir/imap.log: the test reads the commands from it.
$config['imap_debug'] = true;

$config['des_key'] = @DES_KEY@;
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['language'] = 'en_US';
$config['timezone'] = 'UTC';
$config['prettydate'] = false;
$config['enable_spellcheck'] = false;
$config['enable_installer'] = false;
$config['login_rate_limit'] = 0;
$config['support_url'] = '';
$config['product_name'] = 'imapd test webmail';

// What the test's steps rely on:
// one page holds the whole mailbox;
$config['mail_pagesize'] = 100;
$config['layout'] = 'widescreen';
// no background refresh requests between the steps;
$config['refresh_interval'] = 0;
$config['draft_autosave'] = 0;
// opening a message leaves it unread (Roundcube fetches with BODY.PEEK); the test marks a
// message read itself;
$config['mail_read_time'] = -1;
// Delete only sets \Deleted (no Trash, no EXPUNGE), and the deleted message stays listed;
$config['flag_for_deletion'] = true;
$config['skip_deleted'] = false;
$config['read_when_deleted'] = false;
$config['logout_expunge'] = false;
// the threaded view shows every thread expanded;
$config['autoexpand_threads'] = 1;
// no special folders made at login (the test's folder list is its own).
$config['create_default_folders'] = false;
