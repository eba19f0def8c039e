<?php
/*
 * roundcube_send.php - sends one message the way Roundcube's rcube_smtp
 * does (Net_SMTP: connect, STARTTLS for a tls:// host, AUTH with %u/%p,
 * MAIL, RCPT, DATA), for test_roundcube.py.
 *
 * Usage: php roundcube_send.php JSON
 *   JSON: {"host": "tls://127.0.0.1:PORT", "user": "...", "pass": "...",
 *          "auth_type": "PLAIN"|"LOGIN"|"", "cafile": "...",
 *          "peer_name": "...", "from": "...", "to": ["..."],
 *          "headers": "...", "body": "..."}
 * Prints one JSON object: {"ok": bool, "stage": "...", "error": "...",
 * "reply": [code, text], "tls": bool}; exits 0 when the message was
 * accepted, 1 otherwise. Must not: turn off certificate verification.
 */
set_include_path(get_include_path() . PATH_SEPARATOR . '/usr/share/php'
    . PATH_SEPARATOR . '/usr/local/share/pear');
error_reporting(E_ALL & ~E_DEPRECATED & ~E_STRICT);
require_once 'Net/SMTP.php';

function finish($ok, $stage, $smtp, $err = null, $tls = false)
{
    $reply = $smtp ? $smtp->getResponse() : null;
    echo json_encode(['ok' => $ok, 'stage' => $stage,
        'error' => $err ? $err->getMessage() : null,
        'reply' => $reply, 'tls' => $tls]), "\n";
    if ($smtp) {
        $smtp->disconnect();
    }
    exit($ok ? 0 : 1);
}

$a = json_decode($argv[1], true);
if (!is_array($a)) {
    fwrite(STDERR, "usage: php roundcube_send.php JSON\n");
    exit(2);
}

/* rcube_utils::parse_host_uri: tls:// = STARTTLS (default port 587),
 * ssl:// = implicit TLS (465). */
if (!preg_match('#^(?:(tls|ssl)://)?([^:/]+)(?::(\d+))?$#', $a['host'], $m)) {
    fwrite(STDERR, "bad host {$a['host']}\n");
    exit(2);
}
$scheme = $m[1];
$host = $m[2];
$port = isset($m[3]) && $m[3] !== '' ? (int) $m[3] : ($scheme === 'ssl' ? 465 : 587);
if ($scheme === 'ssl') {
    $host = "ssl://$host";
}

/* smtp_conn_options, as config.inc.php sets them. */
$conn_options = ['ssl' => ['verify_peer' => true, 'verify_peer_name' => true,
    'cafile' => $a['cafile'], 'peer_name' => $a['peer_name']]];

$smtp = new Net_SMTP($host, $port, 'webmail.example.test', false, 0, $conn_options);
$r = $smtp->connect(10);
if (PEAR::isError($r)) {
    finish(false, 'connect', null, $r);
}
$smtp->setTimeout(10);
$tls = ($scheme === 'ssl');
if ($scheme === 'tls') {
    $r = $smtp->starttls();
    if (PEAR::isError($r)) {
        finish(false, 'starttls', $smtp, $r);
    }
    /* Roundcube goes on in clear text when STARTTLS is not offered; the
     * test wants to know, so it is reported as a failure here. */
    if ($r !== true) {
        finish(false, 'starttls', $smtp, new PEAR_Error('STARTTLS not offered'));
    }
    $tls = true;
}
if ($a['user'] !== '' && $a['pass'] !== '') {
    $r = $smtp->auth($a['user'], $a['pass'], $a['auth_type'] ?: null, false);
    if (PEAR::isError($r)) {
        finish(false, 'auth', $smtp, $r, $tls);
    }
}
$r = $smtp->mailFrom($a['from']);
if (PEAR::isError($r)) {
    finish(false, 'mail', $smtp, $r, $tls);
}
foreach ($a['to'] as $rcpt) {
    $r = $smtp->rcptTo($rcpt);
    if (PEAR::isError($r)) {
        finish(false, 'rcpt', $smtp, $r, $tls);
    }
}
/* rcube_smtp::send_mail joins headers and body into one string. */
$r = $smtp->data($a['headers'] . "\r\n" . $a['body']);
if (PEAR::isError($r)) {
    finish(false, 'data', $smtp, $r, $tls);
}
finish(true, 'done', $smtp, null, $tls);
