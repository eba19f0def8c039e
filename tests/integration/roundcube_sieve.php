<?php
/*
 * roundcube_sieve.php - manages scripts the way Roundcube's managesieve
 * plugin does (PEAR Net_Sieve: connect, STARTTLS, login, installScript
 * with activation, listScripts), for test_managesieve.py.
 *
 * Usage: php roundcube_sieve.php JSON
 *   JSON: {"port": N, "user": "...", "pass": "...", "name": "...",
 *          "script": "...", "cafile": "...", "peer_name": "..."}
 * Prints one JSON object: {"ok": bool, "stage": "...", "error": "...",
 * "scripts": [...], "active": "...", "script": "..."}; exits 0 on success.
 * Must not: turn off certificate verification.
 */
set_include_path(get_include_path() . PATH_SEPARATOR . '/usr/share/php'
    . PATH_SEPARATOR . '/usr/local/share/pear');
error_reporting(E_ALL & ~E_DEPRECATED & ~E_STRICT);
require_once 'Net/Sieve.php';

function finish($ok, $stage, $err = null, $extra = [])
{
    echo json_encode(array_merge(['ok' => $ok, 'stage' => $stage,
        'error' => $err ? $err->getMessage() : null], $extra)), "\n";
    exit($ok ? 0 : 1);
}

$a = json_decode($argv[1], true);
if (!is_array($a)) {
    fwrite(STDERR, "usage: php roundcube_sieve.php JSON\n");
    exit(2);
}
$sieve = new Net_Sieve();
$opts = ['ssl' => ['verify_peer' => true, 'cafile' => $a['cafile'],
                   'peer_name' => $a['peer_name']]];
$r = $sieve->connect('127.0.0.1', $a['port'], $opts, true);
if (is_a($r, 'PEAR_Error')) {
    finish(false, 'connect', $r);
}
$r = $sieve->login($a['user'], $a['pass'], 'PLAIN');
if (is_a($r, 'PEAR_Error')) {
    finish(false, 'login', $r);
}
$r = $sieve->installScript($a['name'], $a['script'], true);
if (is_a($r, 'PEAR_Error')) {
    finish(false, 'install', $r);
}
$active = null;
$list = $sieve->listScripts($active);
if (is_a($list, 'PEAR_Error')) {
    finish(false, 'list', $list);
}
$text = $sieve->getScript($a['name']);
if (is_a($text, 'PEAR_Error')) {
    finish(false, 'get', $text);
}
$sieve->disconnect();
finish(true, 'done', null, ['scripts' => $list, 'active' => $active,
                            'script' => $text]);
