package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.yaml.in/yaml/v3"
)

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// pushCommand pushes each image by digest, then tags it, and prints repo@sha256:... per image.
// The registry and repository prefix come from --registry/--repository, else from
// TALLY_REGISTRY/TALLY_REPOSITORY, else from the deployment's settings file (--settings: its
// registry and repository, as the manifests are rendered with), else from the rule's defaults
// (--default-*). Credentials come
// from the docker config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json) through
// go-containerregistry's default keychain.
func pushCommand(ctx context.Context, logger *slog.Logger, args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("push", flag.ContinueOnError)
	registry := fl.String("registry", "", "registry host[:port] (default $TALLY_REGISTRY, else the rule's)")
	repository := fl.String("repository", "", "repository prefix, e.g. tally (default $TALLY_REPOSITORY, else the rule's)")
	defaultRegistry := fl.String("default-registry", "", "the rule's registry")
	defaultRepository := fl.String("default-repository", "", "the rule's repository prefix")
	settingsFile := fl.String("settings", "", "the deployment's settings (k8s/settings.yaml): its registry and repository")
	var tags, defaultTags, images listFlag
	fl.Var(&tags, "tag", "tag to set after pushing by digest (repeatable; replaces the rule's tags)")
	fl.Var(&defaultTags, "default-tag", "the rule's tags")
	fl.Var(&images, "image", "name=<OCI layout dir> (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("push: unexpected argument %q", fl.Arg(0))
	}
	var settings pushSettings
	if *settingsFile != "" {
		var err error
		if settings, err = readPushSettings(*settingsFile); err != nil {
			return err
		}
	}
	reg := firstSet(*registry, os.Getenv("TALLY_REGISTRY"), settings.Registry, *defaultRegistry)
	if reg == "" {
		return errors.New("push: no registry: pass --registry host[:port]")
	}
	prefix := strings.Trim(firstSet(*repository, os.Getenv("TALLY_REPOSITORY"), settings.Repository, *defaultRepository), "/")
	if len(tags) == 0 {
		tags = defaultTags
	}
	opts := []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithContext(ctx)}
	for _, spec := range images {
		short, dir, ok := strings.Cut(spec, "=")
		if !ok || short == "" || dir == "" {
			return fmt.Errorf("push: --image %q: want name=<layout dir>", spec)
		}
		repo := reg + "/" + short
		if prefix != "" {
			repo = reg + "/" + prefix + "/" + short
		}
		ref, err := pushOne(ctx, logger, repo, dir, tags, opts)
		if err != nil {
			return fmt.Errorf("push %s: %w", short, err)
		}
		fmt.Fprintln(stdout, ref)
	}
	return nil
}

// pushOne pushes the layout's image as repo@digest, checks that the registry now serves that
// digest, then points each tag at it. It returns repo@digest.
func pushOne(ctx context.Context, logger *slog.Logger, repo, dir string, tags []string, opts []remote.Option) (string, error) {
	img, done, err := readLayout(dir)
	if err != nil {
		return "", err
	}
	defer done()
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	ref, err := name.NewDigest(repo + "@" + digest.String())
	if err != nil {
		return "", err
	}
	logger.InfoContext(ctx, "pushing", "image", ref.String())
	if err := remote.Write(ref, img, opts...); err != nil {
		return "", err
	}
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("check %s: %w", ref, err)
	}
	if desc.Digest != digest {
		return "", fmt.Errorf("registry serves %s for %s", desc.Digest, ref)
	}
	for _, t := range tags {
		tag, err := name.NewTag(repo + ":" + t)
		if err != nil {
			return "", err
		}
		if err := remote.Tag(tag, img, opts...); err != nil {
			return "", fmt.Errorf("tag %s: %w", tag, err)
		}
		logger.InfoContext(ctx, "tagged", "tag", tag.String(), "digest", digest.String())
	}
	return repo + "@" + digest.String(), nil
}

// pushSettings is what push reads of a deployment's settings file; the render reads the rest.
type pushSettings struct {
	Registry   string `yaml:"registry"`
	Repository string `yaml:"repository"`
}

func readPushSettings(path string) (pushSettings, error) {
	var s pushSettings
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("push: settings: %w", err)
	}
	if err := yaml.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("push: settings %s: %w", path, err)
	}
	return s, nil
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
