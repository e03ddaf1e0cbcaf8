<?php
// stackato-local: the router `php -S` runs every request through. It applies the cheap and
// common part of the document root's .htaccess, as the platform's Apache did with all of it:
//   DirectoryIndex, FallbackResource, RewriteEngine, RewriteBase /,
//   RewriteCond %{REQUEST_FILENAME} [!]-f / [!]-d (the front-controller idiom),
//   RewriteRule <regex> <target>|- [L,END,QSA,NC,R,R=301,R=302] with $1.. captures.
// `run` names every other line once when it starts (nothing is dropped silently). Without a
// rule for it, a path that is not a file is a 404, as under Apache; .ht* files are refused
// (403) like Apache's default configuration does. Everything else Apache would serve
// (stackato.yml too, unless the app sets a document-root) is served.
$root = rtrim(realpath($_SERVER['DOCUMENT_ROOT']) ?: $_SERVER['DOCUMENT_ROOT'], '/');
$uri = $_SERVER['REQUEST_URI'];
$path = rawurldecode(parse_url($uri, PHP_URL_PATH) ?? '/');
$query = (string) (parse_url($uri, PHP_URL_QUERY) ?? '');

function stackato_status($code, $text) {
    http_response_code($code);
    header('Content-Type: text/plain');
    echo $text, "\n";
    return true;
}

// What the .htaccess says, as far as applied here.
$index = ['index.php', 'index.html', 'index.htm'];
$fallback = null;
$rules = [];
$engine = false;
$conds = [];
$ht = $root . '/.htaccess';
if (is_file($ht)) {
    foreach (file($ht, FILE_IGNORE_NEW_LINES) as $line) {
        $w = preg_split('/\s+/', trim($line), -1, PREG_SPLIT_NO_EMPTY);
        if (!$w || $w[0][0] === '#') {
            continue;
        }
        switch (strtolower($w[0])) {
            case 'directoryindex':
                $index = array_slice($w, 1);
                break;
            case 'fallbackresource':
                $fallback = $w[1] ?? null;
                break;
            case 'rewriteengine':
                $engine = strtolower($w[1] ?? '') === 'on';
                break;
            case 'rewritecond':
                if (count($w) >= 3 && $w[1] === '%{REQUEST_FILENAME}'
                    && in_array($w[2], ['-f', '!-f', '-d', '!-d'], true)) {
                    $conds[] = $w[2];
                } else {
                    $conds[] = null; // not applied: neither is its rule
                }
                break;
            case 'rewriterule':
                $flags = isset($w[3]) ? explode(',', strtoupper(trim($w[3], '[]'))) : [];
                $known = fn($f) => in_array($f, ['L', 'END', 'QSA', 'NC', 'R'], true) || preg_match('/^R=\d+$/', $f);
                $ok = count($w) >= 3 && $w[1][0] !== '!' && !in_array(null, $conds, true)
                    && count(array_filter($flags, $known)) === count($flags);
                if ($ok && $engine) {
                    $rules[] = [$w[1], $w[2], $flags, $conds];
                }
                $conds = [];
                break;
        }
    }
}

// The rewrite rules, in order (per-directory: the path without its leading slash).
$target = null;
if ($rules) {
    $rel = ltrim($path, '/');
    foreach ($rules as [$pattern, $to, $flags, $cs]) {
        $re = '#' . str_replace('#', '\#', $pattern) . '#' . (in_array('NC', $flags, true) ? 'i' : '');
        if (@preg_match($re, $rel, $m) !== 1) {
            continue;
        }
        $f = $root . '/' . $rel;
        foreach ($cs as $c) {
            $neg = $c[0] === '!';
            $t = ltrim($c, '!') === '-f' ? is_file($f) : is_dir($f);
            if ($t === $neg) {
                continue 2;
            }
        }
        $last = in_array('L', $flags, true) || in_array('END', $flags, true);
        if ($to === '-') {
            if ($last) {
                break;
            }
            continue;
        }
        $to = preg_replace_callback('/\$(\d)/', fn($x) => $m[(int) $x[1]] ?? '', $to);
        [$tpath, $tq] = array_pad(explode('?', $to, 2), 2, null);
        $q = $tq === null ? $query : (in_array('QSA', $flags, true) && $query !== '' ? "$tq&$query" : $tq);
        foreach ($flags as $fl) {
            if ($fl === 'R' || strncmp($fl, 'R=', 2) === 0) {
                $code = $fl === 'R' ? 302 : (int) substr($fl, 2);
                $loc = preg_match('#^[a-z]+://#i', $tpath) || $tpath[0] === '/' ? $tpath : '/' . $tpath;
                header('Location: ' . $loc . ($q !== '' ? "?$q" : ''), true, $code);
                return true;
            }
        }
        $rel = ltrim($tpath, '/');
        $query = $q;
        $target = '/' . $rel;
        if ($last) {
            break;
        }
    }
}

$served = $target ?? $path;
if (preg_match('#(^|/)\.ht#', $served)) {
    return stackato_status(403, 'Forbidden');
}
$file = realpath($root . $served);
$inside = $file !== false && ($file === $root || strpos($file, $root . '/') === 0);
if ($inside && is_dir($file)) {
    if (substr($served, -1) !== '/' && $target === null) {
        header('Location: ' . $path . '/' . ($query !== '' ? "?$query" : ''), true, 301);
        return true;
    }
    $file = null;
    foreach ($index as $i) {
        if (is_file(rtrim($served === '/' ? $root : realpath($root . $served), '/') . '/' . $i)) {
            $file = realpath($root . $served) . '/' . $i;
            $served = rtrim($served, '/') . '/' . $i;
            break;
        }
    }
    $inside = $file !== null;
    $dir_only = !$inside;
}
if (!$inside || !is_file($file)) {
    // /index.php/more: the script with PATH_INFO, which the built-in server does itself.
    if ($target === null && preg_match('#^(.*?\.php)/#', $path, $pm) && is_file($root . $pm[1])) {
        return false;
    }
    if ($fallback !== null && is_file($root . '/' . ltrim($fallback, '/'))) {
        $served = '/' . ltrim($fallback, '/');
        $file = $root . $served;
    } elseif ($dir_only ?? false) {
        return stackato_status(403, 'Forbidden'); // a directory without an index, as Apache
    } else {
        return stackato_status(404, 'Not Found');
    }
}
if ($served === $path && $target === null && $query === (string) (parse_url($uri, PHP_URL_QUERY) ?? '')
    && basename($file) === basename($path)) {
    return false; // as requested: the built-in server serves it (a .php file runs)
}
if (preg_match('/\.(php|phtml)$/', $file)) {
    parse_str($query, $_GET);
    $_REQUEST = array_merge($_GET, $_POST);
    $_SERVER['QUERY_STRING'] = $query;
    $_SERVER['SCRIPT_NAME'] = $served;
    $_SERVER['SCRIPT_FILENAME'] = $file;
    $_SERVER['PHP_SELF'] = $served;
    if ($target !== null || $fallback !== null) {
        $_SERVER['PATH_INFO'] = $path;
    }
    chdir(dirname($file));
    require $file;
    return true;
}
$types = ['html' => 'text/html', 'htm' => 'text/html', 'css' => 'text/css', 'js' => 'application/javascript',
    'json' => 'application/json', 'txt' => 'text/plain', 'png' => 'image/png', 'jpg' => 'image/jpeg',
    'jpeg' => 'image/jpeg', 'gif' => 'image/gif', 'svg' => 'image/svg+xml', 'ico' => 'image/x-icon'];
header('Content-Type: ' . ($types[strtolower(pathinfo($file, PATHINFO_EXTENSION))] ?? 'application/octet-stream'));
readfile($file);
return true;
