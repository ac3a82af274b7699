// Preload for Node programs that the tests start (node --require ./loopback.cjs):
// every TCP server binds to 127.0.0.1, whatever host the program requests.
// Microsoft 365 Agents Playground 0.2.28 calls server.listen(port) with no host,
// which binds all interfaces. Unix socket paths and inherited handles are left as
// they are.
"use strict";

const net = require("node:net");

const loopbackHost = "127.0.0.1";
const originalListen = net.Server.prototype.listen;

function isPortValue(value) {
  if (typeof value === "number") {
    return true;
  }
  return typeof value === "string" && /^[0-9]+$/.test(value);
}

// Rewrite the arguments of server.listen into the options form with the host
// set to loopback. The forms are those of the Node.js net.Server.listen docs:
// listen(), listen(port[, host][, backlog][, callback]),
// listen(options[, callback]), listen(path[, backlog][, callback]) and
// listen(handle[, backlog][, callback]).
function loopbackArguments(args) {
  const callback = typeof args[args.length - 1] === "function" ? args[args.length - 1] : undefined;
  const first = args[0];

  if (first === undefined || typeof first === "function") {
    return [{ port: 0, host: loopbackHost }, callback];
  }

  if (isPortValue(first)) {
    const options = { port: Number(first), host: loopbackHost };
    const backlog = args.slice(1).find((value) => typeof value === "number");
    if (backlog !== undefined) {
      options.backlog = backlog;
    }
    return [options, callback];
  }

  const isTcpOptions = typeof first === "object" && first !== null && first.path === undefined &&
    first.handle === undefined && first.fd === undefined && first._handle === undefined;
  if (isTcpOptions) {
    return [{ ...first, host: loopbackHost }, callback];
  }

  return args;
}

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const rewritten = loopbackArguments(args).filter((value) => value !== undefined);
  return originalListen.apply(this, rewritten);
};
